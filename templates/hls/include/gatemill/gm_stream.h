// gatemill HLS library: stream width conversion between layers of different folding.
#ifndef GATEMILL_STREAM_H
#define GATEMILL_STREAM_H

#include "gm_common.h"

namespace gm {

// Convert a sample of ELEMS elements of BITS bits from IN_LANES to OUT_LANES elements per
// word, keeping the element order. One lane count must divide the other; the writer chains
// two converters through the greatest common divisor otherwise.
template <int BITS, int IN_LANES, int OUT_LANES, unsigned ELEMS>
void resize(hls::stream<ap_uint<IN_LANES * BITS> > &in, hls::stream<ap_uint<OUT_LANES * BITS> > &out) {
    if (OUT_LANES >= IN_LANES) {
        // gather: OUT_LANES / IN_LANES input words make one output word
        const unsigned RATIO = OUT_LANES / IN_LANES;
        ap_uint<OUT_LANES * BITS> word = 0;
        unsigned part = 0;
    gather:
        for (unsigned i = 0; i < ELEMS / IN_LANES; i++) {
#pragma HLS PIPELINE II = 1
            word.range((part + 1) * IN_LANES * BITS - 1, part * IN_LANES * BITS) = in.read();
            if (++part == RATIO) {
                out.write(word);
                part = 0;
            }
        }
    } else {
        // scatter: one input word makes IN_LANES / OUT_LANES output words
        const unsigned RATIO = IN_LANES / OUT_LANES;
        ap_uint<IN_LANES * BITS> word = 0;
        unsigned part = 0;
    scatter:
        for (unsigned i = 0; i < ELEMS / OUT_LANES; i++) {
#pragma HLS PIPELINE II = 1
            if (part == 0) word = in.read();
            out.write(word.range((part + 1) * OUT_LANES * BITS - 1, part * OUT_LANES * BITS));
            if (++part == RATIO) part = 0;
        }
    }
}

// Copy a sample of BEATS words of W bits to two streams (a value read by two layers).
template <int W, unsigned BEATS>
void fork(hls::stream<ap_uint<W> > &in, hls::stream<ap_uint<W> > &a, hls::stream<ap_uint<W> > &b) {
beats:
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II = 1
        const ap_uint<W> word = in.read();
        a.write(word);
        b.write(word);
    }
}

} // namespace gm

#endif
