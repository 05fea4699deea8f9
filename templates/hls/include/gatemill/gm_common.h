// gatemill HLS library: packed stream words and element values.
//
// Every stream between two layers carries packed words: a word holds LANES elements of BITS
// bits each, element k at bits [k*BITS, (k+1)*BITS), channels last (the layout of the RTL
// backend and of the AXI4-Stream ports). BIPOLAR elements are one bit: 1 = +1, 0 = -1.
#ifndef GATEMILL_COMMON_H
#define GATEMILL_COMMON_H

// Packed words of a fully parallel layer (PE x accumulator bits) exceed ap_int's default
// limit of 1024 bits; this must be set before the first include of ap_int.h.
#ifndef AP_INT_MAX_W
#define AP_INT_MAX_W 4096
#endif

#include <ap_int.h>
#include <hls_stream.h>

namespace gm {

// Element k of a packed word, as the raw BITS bits.
template <int BITS, int W>
ap_uint<BITS> get_lane(const ap_uint<W> &word, unsigned k) {
#pragma HLS INLINE
    return word.range(k * BITS + BITS - 1, k * BITS);
}

// Store the raw bits of an element into lane k of a packed word.
template <int BITS, int W>
void set_lane(ap_uint<W> &word, unsigned k, const ap_uint<BITS> &bits) {
#pragma HLS INLINE
    word.range(k * BITS + BITS - 1, k * BITS) = bits;
}

// Lane k of a word as a value of element type T (ap_int<B> or ap_uint<B>): the bits are
// reinterpreted, so a signed type gets its two's-complement value back.
template <class T, int W>
T lane(const ap_uint<W> &word, unsigned k) {
#pragma HLS INLINE
    T value = get_lane<T::width>(word, k);
    return value;
}

// The arithmetic value of an element code: BIPOLAR codes 0/1 stand for -1/+1, other types
// are their own value. Returned as ap_int one bit wider than T, which holds both cases.
template <class T, bool BIPOLAR>
ap_int<T::width + 1> value(const T &code) {
#pragma HLS INLINE
    if (BIPOLAR) return code ? ap_int<T::width + 1>(1) : ap_int<T::width + 1>(-1);
    return code;
}

} // namespace gm

#endif
