/* A narrow C face over libx264 for src/pipeline/x264.rs: x264_param_t and
 * x264_picture_t change layout between x264 builds, so Rust never sees
 * them; it passes strings, plane pointers and integers instead. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <x264.h>

/* One encoded frame, valid until the next hlsd_x264_encode call. */
typedef struct {
    const uint8_t *data; /* Annex B access unit (x264 keeps NAL payloads contiguous) */
    int size;            /* bytes */
    int64_t pts;         /* in the encoder's timebase (nanoseconds) */
    int64_t dts;
    int keyframe;
} hlsd_x264_frame;

/* Colour description codes are ISO/IEC 23001-8 (H.264 VUI); -1 leaves
 * x264's "undefined". */
x264_t *hlsd_x264_open(int width, int height, int fps_num, int fps_den, int par_n, int par_d,
                       int colorprim, int transfer, int colmatrix, int fullrange,
                       const char *preset, const char *tune, const char *profile,
                       const char *const *names, const char *const *values, int n_options,
                       char *err, size_t err_len)
{
    x264_param_t param;
    if (x264_param_default_preset(&param, preset, (tune && *tune) ? tune : NULL) < 0) {
        snprintf(err, err_len, "unknown x264 preset '%s' or tune '%s'", preset, tune ? tune : "");
        return NULL;
    }
    param.i_csp = X264_CSP_I420;
    param.i_width = width;
    param.i_height = height;
    if (fps_num > 0 && fps_den > 0) {
        param.i_fps_num = (uint32_t)fps_num;
        param.i_fps_den = (uint32_t)fps_den;
    }
    param.vui.i_sar_width = par_n;
    param.vui.i_sar_height = par_d;
    if (colorprim >= 0)
        param.vui.i_colorprim = colorprim;
    if (transfer >= 0)
        param.vui.i_transfer = transfer;
    if (colmatrix >= 0)
        param.vui.i_colmatrix = colmatrix;
    if (fullrange >= 0)
        param.vui.b_fullrange = fullrange;
    /* Timestamps in nanoseconds, as GStreamer's; rate control reads them. */
    param.b_vfr_input = 1;
    param.i_timebase_num = 1;
    param.i_timebase_den = 1000000000;
    /* A byte-stream with SPS/PPS before every key frame: each HLS segment
     * decodes on its own. */
    param.b_annexb = 1;
    param.b_repeat_headers = 1;
    /* Access unit delimiters, as x264enc writes by default. */
    param.b_aud = 1;
    param.i_log_level = X264_LOG_ERROR;
    for (int i = 0; i < n_options; i++) {
        int r = x264_param_parse(&param, names[i], values[i]);
        if (r != 0) {
            snprintf(err, err_len, "x264 option %s=%s: %s", names[i], values[i],
                     r == X264_PARAM_BAD_NAME ? "unknown option" : "bad value");
            return NULL;
        }
    }
    if (profile && *profile && x264_param_apply_profile(&param, profile) < 0) {
        snprintf(err, err_len, "x264 profile '%s' does not fit these settings", profile);
        return NULL;
    }
    x264_t *enc = x264_encoder_open(&param);
    if (!enc)
        snprintf(err, err_len, "x264_encoder_open refused %dx%d", width, height);
    return enc;
}

/* Encodes one I420 picture (planes NULL: drains a delayed frame). Returns
 * the bytes written to out (0: nothing yet) or a negative x264 error. */
int hlsd_x264_encode(x264_t *enc, uint8_t *const planes[3], const int strides[3], int64_t pts,
                     int force_idr, hlsd_x264_frame *out)
{
    x264_picture_t in, pic_out;
    x264_nal_t *nals = NULL;
    int n_nals = 0;
    x264_picture_init(&pic_out);
    int size;
    if (planes) {
        x264_picture_init(&in);
        in.img.i_csp = X264_CSP_I420;
        in.img.i_plane = 3;
        for (int i = 0; i < 3; i++) {
            in.img.plane[i] = planes[i];
            in.img.i_stride[i] = strides[i];
        }
        in.i_pts = pts;
        in.i_type = force_idr ? X264_TYPE_IDR : X264_TYPE_AUTO;
        size = x264_encoder_encode(enc, &nals, &n_nals, &in, &pic_out);
    } else {
        size = x264_encoder_encode(enc, &nals, &n_nals, NULL, &pic_out);
    }
    memset(out, 0, sizeof *out);
    if (size <= 0 || n_nals <= 0)
        return size;
    out->data = nals[0].p_payload;
    out->size = size;
    out->pts = pic_out.i_pts;
    out->dts = pic_out.i_dts;
    out->keyframe = pic_out.b_keyframe;
    return size;
}

int hlsd_x264_delayed_frames(x264_t *enc)
{
    return x264_encoder_delayed_frames(enc);
}

void hlsd_x264_close(x264_t *enc)
{
    x264_encoder_close(enc);
}
