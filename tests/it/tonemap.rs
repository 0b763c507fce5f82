//! Tone mapping against ffmpeg: SMPTE HD colour bars, made HDR10 by
//! ffmpeg's `zscale` with SDR white at 203 cd/m² (ITU-R BT.2408), mapped
//! to SDR BT.709 by hlsd's arithmetic (`hlsd::tonemap`) and by ffmpeg's
//! reference chain `zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,
//! tonemap=tonemap=ALG:desat=0:peak=10,zscale=t=bt709:m=bt709:r=tv`.
//!
//! The arithmetic only: the element that runs it in a pipeline is not
//! built yet.

use crate::common::*;
use hlsd::tonemap::{map_picture, Curve, Transfer};

const W: usize = 640;
const H: usize = 360;

/// PSNR of two 8-bit planes, dB.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

/// Mean chroma distance from grey, `|Cb-128| + |Cr-128|`, over the
/// top colour bars (rows 20..200 of 4:2:0 chroma, i.e. picture rows
/// 40..400 scaled to 360).
fn saturation(cb: &[u8], cr: &[u8]) -> f64 {
    let (cw, rows) = (W / 2, 10..100);
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in rows {
        for x in 0..cw {
            let i = y * cw + x;
            sum += (f64::from(cb[i]) - 128.0).abs() + (f64::from(cr[i]) - 128.0).abs();
            n += 1.0;
        }
    }
    sum / n
}

#[test]
fn tone_mapping_matches_ffmpeg_and_bt2390_keeps_white_bright_and_colours() {
    if std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_err()
    {
        skip("ffmpeg is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let size = format!("{W}x{H}");
    ffmpeg_make(&[
        "-f",
        "lavfi",
        "-i",
        &format!("smptehdbars=s={size}"),
        "-frames:v",
        "1",
        "-vf",
        "zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=linear:p=bt709:npl=203,format=gbrpf32le,\
         zscale=p=bt2020:t=smpte2084:m=bt2020nc:r=tv:npl=203,format=yuv420p10le",
        "-f",
        "rawvideo",
        &path("pq.yuv"),
    ]);
    ffmpeg_make(&[
        "-f",
        "lavfi",
        "-i",
        &format!("smptehdbars=s={size}"),
        "-frames:v",
        "1",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "rawvideo",
        &path("sdr.yuv"),
    ]);
    let raw = std::fs::read(path("pq.yuv")).unwrap();
    let samples: Vec<u16> = raw
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let (luma, chroma) = (W * H, (W / 2) * (H / 2));
    let planes = [
        &samples[..luma],
        &samples[luma..luma + chroma],
        &samples[luma + chroma..luma + 2 * chroma],
    ];
    let ours = |curve| map_picture(planes, (W, H), 10, Transfer::Pq, curve, 10.0);

    for (curve, name) in [
        (Curve::Hable, "hable"),
        (Curve::Mobius, "mobius"),
        (Curve::Reinhard, "reinhard"),
    ] {
        let out = path(&format!("{name}.yuv"));
        ffmpeg_make(&[
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p10le",
            "-s",
            &size,
            "-i",
            &path("pq.yuv"),
            "-vf",
            &format!(
                "zscale=tin=smpte2084:min=bt2020nc:pin=bt2020:rin=tv:t=linear:p=bt2020:npl=100,\
                 format=gbrpf32le,zscale=p=bt709,tonemap=tonemap={name}:desat=0:peak=10,\
                 zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
            ),
            "-f",
            "rawvideo",
            &out,
        ]);
        let reference = std::fs::read(&out).unwrap();
        let [y, _, _] = ours(curve);
        let db = psnr(&y, &reference[..luma]);
        println!(
            "{name}: luma PSNR {db:.1} dB; 75 % white bar {} (ffmpeg {})",
            y[60 * W + 80],
            reference[60 * W + 80]
        );
        assert!(db >= 35.0, "{name}: {db:.1} dB");
    }

    // BT.2390: the 75 % white bar bright, greys grey, colours kept.
    let sdr = std::fs::read(path("sdr.yuv")).unwrap();
    let [y, cb, cr] = ours(Curve::Bt2390);
    let white = y[60 * W + 80];
    let kept = saturation(&cb, &cr) / saturation(&sdr[luma..luma + chroma], &sdr[luma + chroma..]);
    // The grey bar at the left and the 75 % white bar: chroma at grey.
    let grey = [(30, 5), (30, 45)]
        .iter()
        .map(|(row, col)| {
            let i = row * (W / 2) + col;
            (i32::from(cb[i]) - 128)
                .abs()
                .max((i32::from(cr[i]) - 128).abs())
        })
        .max()
        .unwrap();
    println!(
        "bt2390: 75 % white bar {white} (untouched PQ: 127), greys off by {grey}, {:.0} % of SDR saturation",
        kept * 100.0
    );
    assert!(white >= 145, "{white}");
    assert!(grey <= 3, "{grey}");
    assert!(kept >= 0.6, "{kept}");
}
