//! `hlsdx264enc` in a pipeline: every frame out in order from a small
//! buffer pool, and bad settings as error messages.

use super::*;
use gst_video::prelude::*;
use std::sync::Arc;

const W: u32 = 320;
const H: u32 = 240;
const FRAMES: u64 = 60;
const FRAME_NS: u64 = 1_000_000_000 / 30;

/// (PTS ns, DTS ns, key frame, bytes) of each output buffer.
type Outputs = Arc<std::sync::Mutex<Vec<(u64, u64, bool, Vec<u8>)>>>;

/// `hlsdx264enc ! appsink`, playing, with the encoder's sink pad.
fn encoder_pipeline(props: &str) -> (gst::Pipeline, gst::Pad, Outputs) {
    gst::init().unwrap();
    register().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "hlsdx264enc name=enc {props} ! appsink name=out sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let outputs = Outputs::default();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let collected = outputs.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let b = sample.buffer().unwrap();
                collected.lock().unwrap().push((
                    b.pts().unwrap().nseconds(),
                    b.dts().unwrap().nseconds(),
                    !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    b.map_readable().unwrap().to_vec(),
                ));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let pad = pipeline.by_name("enc").unwrap().static_pad("sink").unwrap();
    let caps = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, W, H)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap();
    assert!(pad.send_event(gst::event::StreamStart::new("x264-test")));
    assert!(pad.send_event(gst::event::Caps::new(&caps)));
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(pad.send_event(gst::event::Segment::new(&segment)));
    (pipeline, pad, outputs)
}

/// A moving picture: a bright square that walks across grey.
fn paint(buffer: &mut gst::BufferRef, info: &gst_video::VideoInfo, n: u64) {
    let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, info).unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let luma = frame.plane_data_mut(0).unwrap();
    luma.fill(100);
    let x0 = (n as usize * 4) % (W as usize - 40);
    for y in 60..100 {
        luma[y * stride + x0..y * stride + x0 + 40].fill(230);
    }
    for plane in 1..3 {
        frame.plane_data_mut(plane).unwrap().fill(128);
    }
}

#[test]
fn every_frame_comes_out_in_order_from_a_pool_of_two_buffers() {
    let (pipeline, pad, outputs) = encoder_pipeline("key-int-max=30");
    let info = gst_video::VideoInfo::from_caps(&pad.current_caps().unwrap()).unwrap();
    // Two buffers only: an encoder that kept frames x264 holds back
    // (x264enc keeps about 17) would leave none to acquire.
    let pool = gst_video::VideoBufferPool::new();
    let mut config = pool.config();
    config.set_params(Some(&pad.current_caps().unwrap()), info.size() as u32, 2, 2);
    pool.set_config(config).unwrap();
    pool.set_active(true).unwrap();
    let params = gst::BufferPoolAcquireParams::with_flags(gst::BufferPoolAcquireFlags::DONTWAIT);
    for n in 0..FRAMES {
        let mut buffer = pool
            .acquire_buffer(Some(&params))
            .unwrap_or_else(|e| panic!("frame {n}: no free buffer in the pool ({e:?})"));
        let b = buffer.get_mut().unwrap();
        paint(b, &info, n);
        b.set_pts(gst::ClockTime::from_nseconds(n * FRAME_NS));
        b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
        if n == 10 {
            let force = gst_video::DownstreamForceKeyUnitEvent::builder().build();
            assert!(pad.send_event(force));
        }
        pad.chain(buffer).unwrap();
    }
    assert!(pad.send_event(gst::event::Eos::new()));
    pipeline.set_state(gst::State::Null).unwrap();

    let out = outputs.lock().unwrap();
    assert_eq!(out.len() as u64, FRAMES, "one access unit per frame");
    let offset = TIMESTAMP_OFFSET.nseconds();
    let mut pts: Vec<u64> = out.iter().map(|o| o.0 - offset).collect();
    pts.sort_unstable();
    assert_eq!(pts, (0..FRAMES).map(|n| n * FRAME_NS).collect::<Vec<_>>());
    assert!(out.windows(2).all(|w| w[0].1 < w[1].1), "DTS increases");
    assert!(out.iter().all(|o| o.1 <= o.0), "DTS is never after PTS");
    let keys: Vec<u64> = out
        .iter()
        .filter(|o| o.2)
        .map(|o| (o.0 - offset) / FRAME_NS)
        .collect();
    assert_eq!(keys.first(), Some(&0), "starts on a key frame");
    assert!(keys.contains(&10), "the forced key frame: {keys:?}");
    assert!(
        keys.windows(2).all(|w| w[1] - w[0] <= 30),
        "key-int-max 30: {keys:?}"
    );
    // Key frames start with an access unit delimiter and carry SPS and
    // PPS (Annex B), so each segment decodes on its own.
    for (_, _, _, data) in out.iter().filter(|o| o.2) {
        let nal_types: Vec<u8> = data
            .windows(4)
            .filter(|w| w[..3] == [0, 0, 1])
            .map(|w| w[3] & 0x1f)
            .collect();
        assert_eq!(nal_types.first(), Some(&9), "AUD first: {nal_types:?}");
        assert!(nal_types.contains(&7) && nal_types.contains(&8) && nal_types.contains(&5));
    }
}

#[test]
fn a_bad_setting_is_an_error_message_not_a_crash() {
    let (pipeline, pad, _) = encoder_pipeline("option-string=no-such-option=1");
    let info = gst_video::VideoInfo::from_caps(&pad.current_caps().unwrap()).unwrap();
    let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    assert_eq!(pad.chain(buffer), Err(gst::FlowError::Error));
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = format!("{} {:?}", e.error(), e.debug());
    assert!(text.contains("no-such-option"), "{text}");
    pipeline.set_state(gst::State::Null).unwrap();
}
