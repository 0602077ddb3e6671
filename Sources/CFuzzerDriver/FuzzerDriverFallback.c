#include "CFuzzerDriver.h"

#include <stdio.h>
#include <stdlib.h>

// Weak, so libFuzzer's own definition wins when the target is linked with
// -sanitize=fuzzer. Without it, a plain build still links and can replay a
// corpus file or a crash input: every argument that is not a flag is a file.
__attribute__((weak)) int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size)) {
    int replayed = 0;
    for (int i = 1; i < *argc; i++) {
        const char *path = (*argv)[i];
        if (path[0] == '-') continue;
        FILE *file = fopen(path, "rb");
        if (file == NULL) {
            fprintf(stderr, "cannot open %s\n", path);
            return 1;
        }
        size_t capacity = 4096, size = 0;
        uint8_t *data = malloc(capacity);
        size_t read;
        while (data != NULL && (read = fread(data + size, 1, capacity - size, file)) > 0) {
            size += read;
            if (size == capacity) data = realloc(data, capacity *= 2);
        }
        fclose(file);
        if (data == NULL) {
            fprintf(stderr, "out of memory reading %s\n", path);
            return 1;
        }
        callback(data, size);
        free(data);
        replayed++;
    }
    fprintf(stderr, "replayed %d input(s) without libFuzzer (build with -sanitize=fuzzer to fuzz)\n", replayed);
    return 0;
}
