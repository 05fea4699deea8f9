// gatemill HLS library: the matrix-vector unit (dense layers, and convolutions after the
// sliding window), PE rows x SIMD columns per cycle.
#ifndef GATEMILL_MATRIX_VECTOR_H
#define GATEMILL_MATRIX_VECTOR_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   in_t, w_t, acc_t   element types: input code, weight, accumulator
//   IN_BIPOLAR         input codes 0/1 stand for -1/+1
//   BINARY             XNOR-popcount: inputs and weights are both bipolar codes, and the
//                      accumulator counts the positions where they agree (0..MW)
//   MH, MW, PE, SIMD   matrix size and folding; NF = MH / PE, SF = MW / SIMD
//   PIXELS             products per sample (OH * OW for a convolution, 1 for a dense layer)
//
// Input: PIXELS * SF words of SIMD elements per sample (word sf holds columns
// sf*SIMD .. sf*SIMD+SIMD-1). Output: PIXELS * NF words of PE accumulators (word nf holds rows
// nf*PE .. nf*PE+PE-1). weights[p][nf * SF + sf][s] is W[nf*PE + p][sf*SIMD + s].
template <class CONFIG_T>
void matrix_vector(hls::stream<ap_uint<CONFIG_T::SIMD * CONFIG_T::in_t::width> > &in,
                   hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::acc_t::width> > &out,
                   const typename CONFIG_T::w_t weights[CONFIG_T::PE][CONFIG_T::NF * CONFIG_T::SF]
                                                       [CONFIG_T::SIMD]) {
    // PE x SIMD weights are read every cycle: one memory per (pe, simd) lane
#pragma HLS ARRAY_PARTITION variable = weights complete dim = 1
#pragma HLS ARRAY_PARTITION variable = weights complete dim = 3
    typedef typename CONFIG_T::in_t in_t;
    typedef typename CONFIG_T::acc_t acc_t;
    const int IN_BITS = in_t::width;
    const int ACC_BITS = acc_t::width;

    // the input vector is read once (nf == 0) and reused for every group of PE rows
    ap_uint<CONFIG_T::SIMD * IN_BITS> buffer[CONFIG_T::SF];
    acc_t acc[CONFIG_T::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete

pixels:
    for (unsigned px = 0; px < CONFIG_T::PIXELS; px++) {
        unsigned nf = 0, sf = 0;
    fold:
        for (unsigned i = 0; i < CONFIG_T::NF * CONFIG_T::SF; i++) {
#pragma HLS PIPELINE II = 1
            if (nf == 0) buffer[sf] = in.read();
            const ap_uint<CONFIG_T::SIMD * IN_BITS> word = buffer[sf];
        rows:
            for (unsigned p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
                // a partial sum over some columns stays within the accumulator's range:
                // every product's range contains 0 (see the IR's accumulator_range)
                acc_t sum = 0;
            columns:
                for (unsigned s = 0; s < CONFIG_T::SIMD; s++) {
#pragma HLS UNROLL
                    const in_t x = lane<in_t>(word, s);
                    const typename CONFIG_T::w_t w = weights[p][nf * CONFIG_T::SF + sf][s];
                    if (CONFIG_T::BINARY) {
                        sum += (x == w) ? 1 : 0;
                    } else {
                        sum += value<in_t, CONFIG_T::IN_BIPOLAR>(x) * w;
                    }
                }
                acc[p] = (sf == 0) ? sum : acc_t(acc[p] + sum);
            }
            if (sf == CONFIG_T::SF - 1) {
                ap_uint<CONFIG_T::PE * ACC_BITS> result = 0;
            pack:
                for (unsigned p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
                    set_lane<ACC_BITS>(result, p, acc[p]);
                }
                out.write(result);
                sf = 0;
                nf = (nf == CONFIG_T::NF - 1) ? 0 : nf + 1;
            } else {
                sf++;
            }
        }
    }
}

} // namespace gm

#endif
