// gatemill C testbench: streams every test vector through gatemill_top and compares every
// output element with the golden model's, bit for bit.
//
// Usage: gatemill_tb [INPUTS OUTPUTS]   (default tb_data/inputs.txt tb_data/outputs.txt)
// Each file holds one sample per line: the IR integers, channels last, separated by spaces
// (BIPOLAR as -1/+1). Prints one summary line and returns 0 only when nothing differs.
#include "gatemill_top.h"

#include <cstdio>
#include <fstream>
#include <vector>

static bool read_sample(std::ifstream &f, std::vector<long long> &v) {
    for (size_t i = 0; i < v.size(); i++)
        if (!(f >> v[i])) return false;
    return true;
}

int main(int argc, char **argv) {
    const char *in_path = argc > 1 ? argv[1] : "tb_data/inputs.txt";
    const char *gold_path = argc > 2 ? argv[2] : "tb_data/outputs.txt";
    std::ifstream fin(in_path), fgold(gold_path);
    if (!fin || !fgold) {
        std::fprintf(stderr, "gatemill csim: cannot open %s or %s\n", in_path, gold_path);
        return 2;
    }
    std::vector<long long> x(GM_IN_ELEMS), gold(GM_OUT_ELEMS);
    long vectors = 0, mismatches = 0, framing_errors = 0, first_bad = -1;
    while (read_sample(fin, x)) {
        if (!read_sample(fgold, gold)) {
            std::fprintf(stderr, "gatemill csim: %s has fewer samples than %s\n", gold_path, in_path);
            return 2;
        }
        hls::stream<gm_axis_in_t> s_axis("s_axis");
        hls::stream<gm_axis_out_t> m_axis("m_axis");
        for (unsigned b = 0; b < GM_IN_BEATS; b++) {
            gm_axis_in_t beat;
            beat.data = 0;
            for (unsigned k = 0; k < GM_IN_LANES; k++)
                beat.data.range((k + 1) * GM_IN_BITS - 1, k * GM_IN_BITS) =
                    gm_in_codec::encode(x[b * GM_IN_LANES + k]);
            beat.keep = -1;
            beat.strb = -1;
            beat.last = (b == GM_IN_BEATS - 1);
            s_axis.write(beat);
        }
        gatemill_top(s_axis, m_axis);
        long bad = 0;
        for (unsigned b = 0; b < GM_OUT_BEATS; b++) {
            if (m_axis.empty()) {
                framing_errors++;
                bad += (GM_OUT_BEATS - b) * GM_OUT_LANES;
                break;
            }
            const gm_axis_out_t beat = m_axis.read();
            if (beat.last != (b == GM_OUT_BEATS - 1)) framing_errors++;
            for (unsigned k = 0; k < GM_OUT_LANES; k++) {
                const long long y = gm_out_codec::decode(
                    beat.data.range((k + 1) * GM_OUT_BITS - 1, k * GM_OUT_BITS));
                if (y != gold[b * GM_OUT_LANES + k]) bad++;
            }
        }
        if (!m_axis.empty() || !s_axis.empty()) framing_errors++;
        if ((bad || framing_errors) && first_bad < 0) first_bad = vectors;
        mismatches += bad;
        vectors++;
    }
    std::printf("gatemill csim: vectors %ld mismatches %ld framing_errors %ld first_bad_sample %ld\n",
                vectors, mismatches, framing_errors, first_bad);
    return (mismatches || framing_errors || vectors == 0) ? 1 : 0;
}
