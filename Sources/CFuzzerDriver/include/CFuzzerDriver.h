#ifndef CFUZZER_DRIVER_H
#define CFUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry for programs that have their own main: it parses the
/// libFuzzer flags in argv and runs `callback` on each input. Built with
/// `-sanitize=fuzzer`, libFuzzer provides it; otherwise the fallback in
/// FuzzerDriverFallback.c replays the files named in argv once each.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
