//! Media time: running time made equal to media time downstream of each
//! decoded or parsed pad, so segment `n` carries the same timestamps
//! whichever producer made it, and the one seek of a pipeline that starts
//! past segment 0.

use gst::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Makes running time equal media time downstream of `pad`, the same
/// whichever producer made a segment.
///
/// Media time is the running time of a pipeline that did not seek (what
/// the key-frame index records): each segment event gets `base = start -
/// offset` and `time = base`, where `offset` (`start - base`, in the
/// demuxer's timestamp domain) is taken from the segments seen until the
/// pipeline's seek is sent (`seek`), then frozen; a pad whose first
/// segment comes after the seek takes the offset another pad had before
/// it (its own first segment already speaks of the seek). A producer that
/// starts at segment 0 sees the demuxer's running time unchanged; one that
/// seeks keeps the same mapping, because demuxers do not keep either time
/// across a seek alike: after seeking an ffmpeg-made MPEG-TS file,
/// `tsdemux`'s times were 0.78 s (its first PCR against its first PTS) off
/// a pass from the start, and every segment a seeking producer made came
/// that far off its place.
///
/// Returns the pad's current segment as rewritten (the pad's own sticky
/// event keeps the demuxer's), for probes on the same pad that need media
/// times.
pub(super) fn media_time_segments(pad: &gst::Pad, seek: Option<Arc<SeekOnce>>) -> MediaSegment {
    let current = MediaSegment::default();
    let shared = current.clone();
    let offset = Mutex::new(None::<i128>);
    crate::guard::probe(pad, gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &mut info.data {
            if let gst::EventView::Segment(e) = event.view() {
                if let Some(segment) = e.segment().downcast_ref::<gst::ClockTime>() {
                    let ns = |t: Option<gst::ClockTime>| i128::from(t.map_or(0, |t| t.nseconds()));
                    let (start, base) = (ns(segment.start()), ns(segment.base()));
                    let frozen = seek.as_ref().is_some_and(|s| s.is_sent());
                    let mut offset = offset.lock().expect("segment offset");
                    if !frozen {
                        *offset = Some(start - base);
                        if let Some(seek) = &seek {
                            seek.note_offset(start - base);
                        }
                    } else if offset.is_none() {
                        *offset = Some(seek.as_ref().and_then(|s| s.offset()).unwrap_or(0));
                    }
                    let media = (start - offset.unwrap_or(0)).max(0);
                    tracing::trace!(start = ?segment.start(), time = ?segment.time(), base = ?segment.base(), frozen, media_ns = media as u64, "segment");
                    let media = gst::ClockTime::from_nseconds(u64::try_from(media).unwrap_or(0));
                    let mut segment = segment.clone();
                    segment.set_time(media);
                    segment.set_base(media);
                    *shared.lock().expect("media segment") = Some(segment.clone());
                    let seqnum = event.seqnum();
                    *event = gst::event::Segment::builder(&segment)
                        .seqnum(seqnum)
                        .build();
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
    current
}

/// Buffers every output waits for before a pipeline seeks (see
/// [`SeekOnce`]): by the third, demuxers have told each pad where its
/// stream starts.
const SETTLED_BUFFERS: u8 = 3;

/// How long after `no-more-pads` a pipeline seeks even though an output
/// has not had [`SETTLED_BUFFERS`] buffers.
const NO_MORE_PADS_GRACE: Duration = Duration::from_secs(1);

/// A pad's segment with media time (see [`media_time_segments`]).
pub(super) type MediaSegment = Arc<Mutex<Option<gst::FormattedSegment<gst::ClockTime>>>>;

/// The media time of `pts` in `segment`, if it lies in it.
pub(super) fn media_time(segment: &MediaSegment, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    segment
        .lock()
        .expect("media segment")
        .as_ref()?
        .to_stream_time(pts)
}

/// The seek of a pipeline that starts past segment 0: sent once, as soon
/// as every output has its pad and [`SETTLED_BUFFERS`] buffers have come
/// through each (or the source says it has exposed all its pads;
/// `parsebin` was seen never to say so), from a thread of its own (a
/// flushing seek must not run on a streaming thread). Flushing and
/// accurate, to `start` in media time. Until it lands, the writers drop
/// what comes before their first segment.
///
/// Waiting for data on every output matters: `matroskademux` takes its
/// stream's start time from the earliest block it has read, and tells
/// each pad with a new segment before that pad's next buffer. A seek sent
/// before any block made it take the first block after the seek for the
/// start (stream time off by the whole seek: 0.089 s for 7192.788 s); one
/// sent before the video pad had its second segment (the audio's first
/// block was 21 ms earlier) left that pad's media time 21 ms off, and the
/// writer waited for the next key frame, 2 s late.
///
/// A transcode's seek (`shifted`) goes to `start` plus the offset its pads
/// had before the seek (their demuxer's first timestamp, 0.56 s in an SVCD
/// file): otherwise it lands that much before `start` in media time, and
/// its gate, which waits for a segment at or past the seek, never opened.
/// Remuxes and cue reads seek to `start` in the demuxer's time, which is
/// at or before it in media time: their writers drop what comes before.
///
/// Until the seek lands, the demuxer goes on pushing the stream from its
/// start; a remux's outputs are closed by [`SeekOnce::gate`] until the
/// seek's own flush reaches them. Without the gate, a segment whose
/// start the first pass reached before the seek landed got its frames
/// twice, once from each pass (seen on 2 of 96 AC-3 and E-AC-3 copies
/// under load: 10.7 s decoded of 8 s), and its bytes depended on timing.
pub(super) struct SeekOnce {
    start: Duration,
    shifted: bool,
    pipeline: glib::WeakRef<gst::Pipeline>,
    linked: Arc<Mutex<Linked>>,
    outputs: usize,
    /// Buffers each output has had, up to [`SETTLED_BUFFERS`].
    flowing: Mutex<Vec<u8>>,
    /// Set once the seek is sent.
    sent: std::sync::atomic::AtomicBool,
    /// Names the seek's events: its flush and the segment after it carry
    /// the same sequence number (GStreamer's design: seqnums).
    seqnum: gst::Seqnum,
    /// Set once the seek's flush has reached a gated output.
    landed: std::sync::atomic::AtomicBool,
    /// The first offset any pad had before the seek, for pads whose first
    /// segment comes after it (see [`media_time_segments`]).
    offset: Mutex<Option<i128>>,
}

impl SeekOnce {
    /// A seek to `start` for `pipeline`, once its `outputs` are linked,
    /// in media time when `shifted`; `None` when it starts at zero
    /// (nothing to seek).
    pub(super) fn new(
        start: Duration,
        shifted: bool,
        pipeline: &gst::Pipeline,
        linked: Arc<Mutex<Linked>>,
        outputs: usize,
    ) -> Option<Arc<SeekOnce>> {
        (!start.is_zero()).then(|| {
            Arc::new(SeekOnce {
                start,
                shifted,
                pipeline: pipeline.downgrade(),
                linked,
                outputs,
                flowing: Mutex::new(vec![0; outputs]),
                sent: std::sync::atomic::AtomicBool::new(false),
                seqnum: gst::Seqnum::next(),
                landed: std::sync::atomic::AtomicBool::new(false),
                offset: Mutex::new(None),
            })
        })
    }

    /// Whether the seek is sent.
    pub(super) fn is_sent(&self) -> bool {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records a pad's offset before the seek; the first one is kept.
    pub(super) fn note_offset(&self, offset: i128) {
        self.offset
            .lock()
            .expect("seek offset")
            .get_or_insert(offset);
    }

    /// The first offset a pad had before the seek.
    pub(super) fn offset(&self) -> Option<i128> {
        *self.offset.lock().expect("seek offset")
    }

    /// Seeks now if every output is linked and has had a buffer.
    pub(super) fn when_linked(&self) {
        let all = {
            let linked = self.linked.lock().expect("link state");
            linked.outputs.iter().filter(|l| **l).count() >= self.outputs
        };
        let flowing = self
            .flowing
            .lock()
            .expect("flowing")
            .iter()
            .all(|f| *f >= SETTLED_BUFFERS);
        if all && flowing {
            self.fire();
        }
    }

    /// Counts the buffers of `pad`, the source pad of output `index`, up
    /// to [`SETTLED_BUFFERS`].
    pub(super) fn watch(self: &Arc<Self>, pad: &gst::Pad, index: usize) {
        let me = self.clone();
        crate::guard::probe(pad, gst::PadProbeType::BUFFER, move |_, _| {
            let done = {
                let mut flowing = me.flowing.lock().expect("flowing");
                match flowing.get_mut(index) {
                    Some(f) => {
                        *f = f.saturating_add(1);
                        *f >= SETTLED_BUFFERS
                    }
                    None => true,
                }
            };
            me.when_linked();
            if done {
                gst::PadProbeReturn::Remove
            } else {
                gst::PadProbeReturn::Ok
            }
        });
    }

    /// Seeks now (once), through the first pad linked.
    pub(super) fn fire(&self) {
        if self.sent.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let pad = self.linked.lock().expect("link state").first_pad.clone();
        let pipeline = self.pipeline.clone();
        let offset = match self.shifted {
            true => u64::try_from(self.offset().unwrap_or(0).max(0)).unwrap_or(0),
            false => 0,
        };
        let start = self.start + Duration::from_nanos(offset);
        let seqnum = self.seqnum;
        let spawned = std::thread::Builder::new()
            .name("pipeline-seek".into())
            .spawn(move || {
                let Some(pipeline) = pipeline.upgrade() else {
                    return;
                };
                let seek = gst::event::Seek::builder(
                    1.0,
                    gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                    gst::SeekType::Set,
                    gst::ClockTime::from_nseconds(start.as_nanos() as u64),
                    gst::SeekType::None,
                    gst::ClockTime::NONE,
                )
                .seqnum(seqnum)
                .build();
                let done = pad.map(|p| p.send_event(seek)).unwrap_or(false);
                tracing::debug!(start_ms = start.as_millis() as u64, done, "seek");
                if !done {
                    gst::element_error!(
                        pipeline,
                        gst::ResourceError::Seek,
                        ("This file cannot be seeked to {:.1} s", start.as_secs_f64())
                    );
                }
            });
        if spawned.is_err() {
            tracing::error!("could not start a thread to seek");
        }
    }

    /// Closes `pad` (the sink pad of an output's branch) until the seek
    /// has landed on it: buffers and EOS before the seek's flush (or
    /// the segment that follows it) are dropped; a pad first met after
    /// the seek landed elsewhere is open at once (it only ever saw data
    /// from after the seek). An EOS that comes first (a short file read to
    /// its end before the seek) sends the seek if it was not sent yet.
    pub(super) fn gate(self: &Arc<Self>, pad: &gst::Pad) {
        use std::sync::atomic::Ordering;
        let me = self.clone();
        let open = std::sync::atomic::AtomicBool::new(self.landed.load(Ordering::SeqCst));
        let types = gst::PadProbeType::BUFFER
            | gst::PadProbeType::BUFFER_LIST
            | gst::PadProbeType::EVENT_DOWNSTREAM
            | gst::PadProbeType::EVENT_FLUSH;
        crate::guard::probe(pad, types, move |_, info| {
            if open.load(Ordering::SeqCst) {
                return gst::PadProbeReturn::Remove;
            }
            let Some(gst::PadProbeData::Event(event)) = &info.data else {
                // Data from before the seek.
                return gst::PadProbeReturn::Drop;
            };
            match event.view() {
                gst::EventView::FlushStop(_) | gst::EventView::Segment(_)
                    if me.is_sent() && event.seqnum() == me.seqnum =>
                {
                    open.store(true, Ordering::SeqCst);
                    me.landed.store(true, Ordering::SeqCst);
                    gst::PadProbeReturn::Ok
                }
                gst::EventView::Eos(_) => {
                    me.fire();
                    gst::PadProbeReturn::Drop
                }
                _ => gst::PadProbeReturn::Ok,
            }
        });
    }

    /// Also seeks [`NO_MORE_PADS_GRACE`] after `element` says it has
    /// exposed all its pads, should an output have too few buffers by
    /// then (a stream that starts late) to seek on them.
    pub(super) fn on_no_more_pads(self: &Arc<Self>, element: &gst::Element) {
        let me = Arc::downgrade(self);
        crate::guard::on_no_more_pads(element, move |_| {
            let me = me.clone();
            let spawned = std::thread::Builder::new()
                .name("pipeline-seek-grace".into())
                .spawn(move || {
                    std::thread::sleep(NO_MORE_PADS_GRACE);
                    if let Some(me) = me.upgrade() {
                        if !me.is_sent() {
                            tracing::debug!("an output is still short of buffers: seeking anyway");
                        }
                        me.fire();
                    }
                });
            if spawned.is_err() {
                tracing::error!("could not start a thread to seek");
            }
        });
    }
}

/// Which outputs have a pad linked, and the first pad linked (the seek
/// goes through it).
#[derive(Default)]
pub(super) struct Linked {
    pub(super) outputs: Vec<bool>,
    pub(super) first_pad: Option<gst::Pad>,
}
