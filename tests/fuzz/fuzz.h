/*
 * fuzz.h - what every fuzz target in tests/fuzz/ defines: libFuzzer's entry point. Built with clang and
 * -fsanitize=fuzzer (-DMQ_FUZZ=ON) each target is a fuzzer; built with the normal compiler and replay.c's
 * main() it runs the files of its seed corpus and of its regression inputs once, as a ctest.
 */
#ifndef MQ_FUZZ_H
#define MQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input; returns 0 (libFuzzer reserves other values). Must not keep state between inputs that
 * changes what the next one does. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
