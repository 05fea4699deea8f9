// gatemill HLS library: the convolution input generator (im2col) on a buffer of KH rows.
#ifndef GATEMILL_SLIDING_WINDOW_H
#define GATEMILL_SLIDING_WINDOW_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   BITS                   bits of one element
//   IH, IW, C, SIMD        input feature map and folding; CF = C / SIMD words per pixel
//   KH, KW, SH, SW         kernel and stride
//   PT, PL                 zero padding at the top and left (bottom and right follow from OH, OW)
//   OH, OW                 output size
//
// Input: IH * IW * CF words (channels last). Output: for each output pixel, the window in
// (ky, kx, channel) order, CF words per kernel position; positions in the padding give 0.
// Only the KH most recent input rows are kept: output row oy needs input rows
// oy*SH - PT .. oy*SH - PT + KH - 1, and rows are read just before the first window needs them.
template <class CONFIG_T>
void sliding_window(hls::stream<ap_uint<CONFIG_T::SIMD * CONFIG_T::BITS> > &in,
                    hls::stream<ap_uint<CONFIG_T::SIMD * CONFIG_T::BITS> > &out) {
    typedef ap_uint<CONFIG_T::SIMD * CONFIG_T::BITS> word_t;
    word_t rows[CONFIG_T::KH][CONFIG_T::IW][CONFIG_T::CF];
    int read_rows = 0;
out_rows:
    for (int oy = 0; oy < CONFIG_T::OH; oy++) {
        const int top = oy * CONFIG_T::SH - CONFIG_T::PT;
        const int need = (top + CONFIG_T::KH < CONFIG_T::IH) ? top + CONFIG_T::KH : CONFIG_T::IH;
    fill:
        for (; read_rows < need; read_rows++) {
        fill_row:
            for (int i = 0; i < CONFIG_T::IW * CONFIG_T::CF; i++) {
#pragma HLS PIPELINE II = 1
                rows[read_rows % CONFIG_T::KH][i / CONFIG_T::CF][i % CONFIG_T::CF] = in.read();
            }
        }
    out_cols:
        for (int ox = 0; ox < CONFIG_T::OW; ox++) {
            const int left = ox * CONFIG_T::SW - CONFIG_T::PL;
        window:
            for (int i = 0; i < CONFIG_T::KH * CONFIG_T::KW * CONFIG_T::CF; i++) {
#pragma HLS PIPELINE II = 1
                const int ky = i / (CONFIG_T::KW * CONFIG_T::CF);
                const int kx = (i / CONFIG_T::CF) % CONFIG_T::KW;
                const int cf = i % CONFIG_T::CF;
                const int y = top + ky, x = left + kx;
                const bool inside = y >= 0 && y < CONFIG_T::IH && x >= 0 && x < CONFIG_T::IW;
                out.write(inside ? rows[y % CONFIG_T::KH][x][cf] : word_t(0));
            }
        }
    }
    // rows below the last window (stride or bottom cropping) are read and dropped
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
