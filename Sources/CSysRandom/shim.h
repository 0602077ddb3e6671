#ifndef CSYSRANDOM_SHIM_H
#define CSYSRANDOM_SHIM_H
// getrandom(2), which the Glibc module does not import.
#include <sys/random.h>
#endif
