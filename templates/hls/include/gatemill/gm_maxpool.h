// gatemill HLS library: max pooling (no padding) on a buffer of KH rows.
#ifndef GATEMILL_MAXPOOL_H
#define GATEMILL_MAXPOOL_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   elem_t                 element type (ap_int or ap_uint; a BIPOLAR code compares like its
//                          value, 1 = +1 > 0 = -1)
//   IH, IW, C, PE          input feature map and folding; CF = C / PE words per pixel
//   KH, KW, SH, SW         kernel and stride
//   OH, OW                 output size
//
// Input: IH * IW * CF words, channels last; output: OH * OW * CF words.
template <class CONFIG_T>
void maxpool(hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::elem_t::width> > &in,
             hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::elem_t::width> > &out) {
    typedef typename CONFIG_T::elem_t elem_t;
    const int BITS = elem_t::width;
    typedef ap_uint<CONFIG_T::PE * BITS> word_t;
    word_t rows[CONFIG_T::KH][CONFIG_T::IW][CONFIG_T::CF];
    int read_rows = 0;
out_rows:
    for (int oy = 0; oy < CONFIG_T::OH; oy++) {
        const int top = oy * CONFIG_T::SH;
    fill:
        for (; read_rows < top + CONFIG_T::KH; read_rows++) {
        fill_row:
            for (int i = 0; i < CONFIG_T::IW * CONFIG_T::CF; i++) {
#pragma HLS PIPELINE II = 1
                rows[read_rows % CONFIG_T::KH][i / CONFIG_T::CF][i % CONFIG_T::CF] = in.read();
            }
        }
    out_cols:
        for (int i = 0; i < CONFIG_T::OW * CONFIG_T::CF; i++) {
            const int ox = i / CONFIG_T::CF, cf = i % CONFIG_T::CF;
            elem_t best[CONFIG_T::PE];
#pragma HLS ARRAY_PARTITION variable = best complete
        window:
            for (int k = 0; k < CONFIG_T::KH * CONFIG_T::KW; k++) {
#pragma HLS PIPELINE II = 1
                const int y = top + k / CONFIG_T::KW;
                const int x = ox * CONFIG_T::SW + k % CONFIG_T::KW;
                const word_t word = rows[y % CONFIG_T::KH][x][cf];
            lanes:
                for (int p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
                    const elem_t v = lane<elem_t>(word, p);
                    if (k == 0 || v > best[p]) best[p] = v;
                }
            }
            word_t result = 0;
        pack:
            for (int p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
                set_lane<BITS>(result, p, best[p]);
            }
            out.write(result);
        }
    }
drain:
    for (; read_rows < CONFIG_T::IH; read_rows++) {
    drain_row:
        for (int i = 0; i < CONFIG_T::IW * CONFIG_T::CF; i++) {
#pragma HLS PIPELINE II = 1
            in.read();
        }
    }
}

} // namespace gm

#endif
