/* A CBOR data item's head, in its shortest form (as cbor2 writes it): defined once for the C
 * modules that write CBOR (``membrane/_cbor.c``, ``journal/_framing.c``).
 *
 * ``cbor_head(out, major, n)`` writes the initial byte of major type ``major`` (shifted: 0x00
 * an unsigned integer, 0x20 a negative one, 0x40 a byte string, 0x60 a text string, 0x80 an
 * array, 0xA0 a map, 0xC0 a tag) with its argument ``n`` into ``out`` (room for 9 bytes) and
 * returns how many bytes it wrote. */
#ifndef DISTDEV_CBOR_HEAD_H
#define DISTDEV_CBOR_HEAD_H

#include <stdint.h>

static inline Py_ssize_t
cbor_head(unsigned char *out, unsigned char major, uint64_t n)
{
    if (n < 24) {
        out[0] = major | (unsigned char)n;
        return 1;
    }
    if (n < 0x100) {
        out[0] = major | 24;
        out[1] = (unsigned char)n;
        return 2;
    }
    if (n < 0x10000) {
        out[0] = major | 25;
        out[1] = (unsigned char)(n >> 8);
        out[2] = (unsigned char)n;
        return 3;
    }
    if (n < 0x100000000ull) {
        out[0] = major | 26;
        for (int i = 0; i < 4; i++) {
            out[1 + i] = (unsigned char)(n >> (24 - 8 * i));
        }
        return 5;
    }
    out[0] = major | 27;
    for (int i = 0; i < 8; i++) {
        out[1 + i] = (unsigned char)(n >> (56 - 8 * i));
    }
    return 9;
}

#endif
