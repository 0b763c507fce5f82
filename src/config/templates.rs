//! The encode branches of a transcode, as gst-launch descriptions: the
//! copies built into the binary (the repository's `pipelines/`), or an
//! operator's own (`--pipelines-dir`), checked at start-up.

use anyhow::{bail, Context};
use std::path::Path;

/// The encode branches, as gst-launch descriptions (see `pipelines/`).
#[derive(Debug, Clone)]
pub struct PipelineTemplates {
    /// Raw video in, H.264 out; placeholders `{width}`, `{height}`,
    /// `{keyint}`, `{maxrate_kbps}` and `{bufsize_kbits}` (the rung's VBV
    /// cap and buffer, [`crate::ladder`]).
    pub video_transcode: String,
    /// Raw audio in, AAC out.
    pub audio_transcode: String,
}

const BUILTIN_VIDEO: &str = include_str!("../../pipelines/video-transcode.gst");
const BUILTIN_AUDIO: &str = include_str!("../../pipelines/audio-transcode.gst");

/// Drops `#` comment lines and joins the rest into one description.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

impl PipelineTemplates {
    /// The copies compiled into the binary (the repository's `pipelines/`).
    pub fn builtin() -> Self {
        PipelineTemplates {
            video_transcode: strip_comments(BUILTIN_VIDEO),
            audio_transcode: strip_comments(BUILTIN_AUDIO),
        }
    }

    /// Reads `video-transcode.gst` and `audio-transcode.gst` from `dir`.
    ///
    /// # Errors
    /// Fails when either file cannot be read.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading pipeline description {}", path.display()))
                .map(|t| strip_comments(&t))
        };
        Ok(PipelineTemplates {
            video_transcode: read("video-transcode.gst")?,
            audio_transcode: read("audio-transcode.gst")?,
        })
    }

    /// The video description with its placeholders filled in: the size
    /// in pixels, `keyint` in frames, the VBV cap in kilobits per second
    /// and its buffer in kilobits.
    pub fn video(
        &self,
        width: u32,
        height: u32,
        keyint: u32,
        maxrate_kbps: u32,
        bufsize_kbits: u32,
    ) -> String {
        self.video_transcode
            .replace("{width}", &width.to_string())
            .replace("{height}", &height.to_string())
            .replace("{keyint}", &keyint.to_string())
            .replace("{maxrate_kbps}", &maxrate_kbps.to_string())
            .replace("{bufsize_kbits}", &bufsize_kbits.to_string())
    }

    /// Checks that both descriptions parse into GStreamer bins with one sink
    /// and one source pad, so a typo fails at start-up rather than per session.
    ///
    /// # Errors
    /// Names the description and GStreamer's parse error.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, desc) in [
            (
                "video-transcode.gst",
                self.video(1280, 720, 150, 3000, 3000),
            ),
            ("audio-transcode.gst", self.audio_transcode.clone()),
        ] {
            let bin = gst::parse::bin_from_description(&desc, true)
                .with_context(|| format!("{name} does not parse: {desc}"))?;
            use gst::prelude::*;
            if bin.static_pad("sink").is_none() || bin.static_pad("src").is_none() {
                bail!("{name} must have exactly one unlinked sink and one unlinked src pad");
            }
        }
        Ok(())
    }
}
