#ifndef ZRAMD_CLIBFUZZER_H
#define ZRAMD_CLIBFUZZER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, LLVM 11 and later), present when linked with
/// -sanitize=fuzzer. SwiftPM gives every executable its own `main`, so the fuzzer target's
/// `main` hands over to this instead of libFuzzer's `main`.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
