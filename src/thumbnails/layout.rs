//! Where each thumbnail of a title lies: one tile per [`STEP`] of the
//! title, [`COLUMNS`] × [`ROWS`] tiles per JPEG sheet, [`TILE_WIDTH`]
//! pixels wide; and the texts that point players at them: a WebVTT
//! thumbnails track (`sheet_N.jpg#xywh=x,y,w,h`, as video.js, Shaka and
//! Plyr read it) and an image media playlist (`EXT-X-IMAGES-ONLY` with
//! `EXT-X-TILES`, Roku's HLS image extension, as Jellyfin writes it).
//! Pure: no GStreamer, no HTTP.
//!
//! The figures are Jellyfin's trickplay defaults: 320-pixel tiles, one
//! per 10 s, 10 × 10 to a sheet.

use crate::subtitle::timestamp;
use std::fmt::Write;
use std::ops::Range;
use std::time::Duration;

/// Time between two thumbnails.
pub const STEP: Duration = Duration::from_secs(10);
/// Tiles across a sheet.
pub const COLUMNS: u32 = 10;
/// Tiles down a full sheet.
pub const ROWS: u32 = 10;
/// Width of a tile, pixels.
pub const TILE_WIDTH: u32 = 320;
/// Tiles in a full sheet.
pub const TILES_PER_SHEET: usize = (COLUMNS * ROWS) as usize;

/// A sheet's file name: `sheet_00003.jpg`.
pub fn sheet_name(sheet: usize) -> String {
    format!("sheet_{sheet:05}.jpg")
}

/// The index in `sheet_NNNNN.jpg`, `None` for any other name.
pub fn sheet_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("sheet_")?.strip_suffix(".jpg")?;
    (digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The thumbnails of one title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The title's duration.
    pub duration: Duration,
    /// Width and height of every tile, pixels (both even).
    pub tile: (u32, u32),
}

impl Layout {
    /// The layout of a title `duration` long whose pictures show
    /// `display` (width, height in square pixels, after rotation): tiles
    /// [`TILE_WIDTH`] wide, as high as the aspect ratio makes them,
    /// rounded to an even number (I420), at least 2 and at most 4 ×
    /// the width.
    pub fn new(duration: Duration, display: (u32, u32)) -> Layout {
        let (w, h) = (display.0.max(1), display.1.max(1));
        let height = (f64::from(TILE_WIDTH) * f64::from(h) / f64::from(w) / 2.0).round() as u32 * 2;
        Layout {
            duration,
            tile: (TILE_WIDTH, height.clamp(2, 4 * TILE_WIDTH)),
        }
    }

    /// How many tiles: one per [`STEP`] started, at least one.
    pub fn tiles(&self) -> usize {
        (self.duration.as_nanos().div_ceil(STEP.as_nanos()) as usize).max(1)
    }

    /// How many sheets.
    pub fn sheets(&self) -> usize {
        self.tiles().div_ceil(TILES_PER_SHEET)
    }

    /// The tiles of sheet `sheet`.
    pub fn tiles_of(&self, sheet: usize) -> Range<usize> {
        let start = (sheet * TILES_PER_SHEET).min(self.tiles());
        start..(start + TILES_PER_SHEET).min(self.tiles())
    }

    /// The sheet that shows time `t` (the last for a time past the end).
    pub fn sheet_at(&self, t: Duration) -> usize {
        let tile = (t.as_nanos() / STEP.as_nanos()) as usize;
        (tile / TILES_PER_SHEET).min(self.sheets() - 1)
    }

    /// The time tile `tile` shows: the key frame nearest its start.
    pub fn time(&self, tile: usize) -> Duration {
        STEP * tile as u32
    }

    /// Rows of sheet `sheet`: [`ROWS`], fewer in a last sheet not full.
    pub fn rows(&self, sheet: usize) -> u32 {
        (self.tiles_of(sheet).len() as u32).div_ceil(COLUMNS)
    }

    /// Width and height of sheet `sheet`, pixels: [`COLUMNS`] tiles
    /// across, its rows down.
    pub fn sheet_size(&self, sheet: usize) -> (u32, u32) {
        (COLUMNS * self.tile.0, self.rows(sheet) * self.tile.1)
    }

    /// Where tile `tile` lies in its sheet: (sheet, x, y), pixels.
    pub fn place(&self, tile: usize) -> (usize, u32, u32) {
        let within = (tile % TILES_PER_SHEET) as u32;
        (
            tile / TILES_PER_SHEET,
            within % COLUMNS * self.tile.0,
            within / COLUMNS * self.tile.1,
        )
    }

    /// What the sheets weigh per second of the title, bits per second,
    /// for the master playlist's `BANDWIDTH`: an estimate of one bit per
    /// tile pixel (a JPEG of quality 85 of a film frame at 320 × 180
    /// measured 0.5–1 bits per pixel here) per [`STEP`].
    pub fn bandwidth_bps(&self) -> u64 {
        u64::from(self.tile.0) * u64::from(self.tile.1) / STEP.as_secs()
    }

    /// The WebVTT thumbnails track: one cue per tile, from its time to the
    /// next tile's (the last to the end), so the cues cover the title with
    /// no gap; each cue's text is `{uri(sheet)}#xywh=x,y,w,h` (W3C Media
    /// Fragments), `uri` giving a sheet's URI relative to the track.
    pub fn webvtt(&self, uri: impl Fn(usize) -> String) -> String {
        let mut out = String::from("WEBVTT\n");
        for tile in 0..self.tiles() {
            let start = self.time(tile);
            let end = self.time(tile + 1).min(self.duration).max(start);
            let (sheet, x, y) = self.place(tile);
            let _ = write!(
                out,
                "\n{} --> {}\n{}#xywh={x},{y},{},{}\n",
                timestamp(start),
                timestamp(end),
                uri(sheet),
                self.tile.0,
                self.tile.1
            );
        }
        out
    }

    /// The image media playlist (Roku's HLS image extension): a VOD
    /// playlist of the sheets, `EXT-X-IMAGES-ONLY`, each sheet with its
    /// `EXT-X-TILES` (tile resolution, layout, time per tile) and an
    /// `EXTINF` of the time its tiles cover. `uri` gives a sheet's URI
    /// relative to the playlist.
    pub fn image_playlist(&self, uri: impl Fn(usize) -> String) -> String {
        let spans: Vec<Duration> = (0..self.sheets())
            .map(|s| {
                let tiles = self.tiles_of(s);
                self.time(tiles.end).min(self.duration) - self.time(tiles.start)
            })
            .collect();
        let target = spans.iter().map(|d| d.as_secs_f64().ceil() as u64).max();
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", target.unwrap_or(1).max(1));
        out.push_str("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-IMAGES-ONLY\n");
        for (sheet, span) in spans.iter().enumerate() {
            let _ = writeln!(
                out,
                "#EXTINF:{:.3},\n#EXT-X-TILES:RESOLUTION={}x{},LAYOUT={COLUMNS}x{},DURATION={:.3}\n{}",
                span.as_secs_f64(),
                self.tile.0,
                self.tile.1,
                self.rows(sheet),
                STEP.as_secs_f64(),
                uri(sheet)
            );
        }
        out.push_str("#EXT-X-ENDLIST\n");
        out
    }

    /// Sheet `sheet` put together from its tiles' pictures (I420 in a
    /// JPEG's full-range BT.601, packed planes of `size` pixels; `None` where a tile has none): each
    /// picture at its place, cut or padded with black to the tile's size.
    /// Returns the sheet's packed I420 planes.
    pub fn compose(&self, sheet: usize, tiles: &[Option<Tile<'_>>]) -> [Vec<u8>; 3] {
        let (w, h) = self.sheet_size(sheet);
        // Black, in a JPEG's full-range YCbCr.
        let mut planes = [
            vec![0u8; (w * h) as usize],
            vec![128u8; (w.div_ceil(2) * h.div_ceil(2)) as usize],
            vec![128u8; (w.div_ceil(2) * h.div_ceil(2)) as usize],
        ];
        let first = self.tiles_of(sheet).start;
        for (i, tile) in tiles.iter().enumerate() {
            let Some(tile) = tile else { continue };
            let (_, x, y) = self.place(first + i);
            for (p, plane) in planes.iter_mut().enumerate() {
                let shift = u32::from(p > 0);
                let (dst_w, src_w) = (w.div_ceil(1 << shift), tile.size.0.div_ceil(1 << shift));
                let cols = src_w.min(self.tile.0 >> shift) as usize;
                let rows = tile.size.1.div_ceil(1 << shift).min(self.tile.1 >> shift);
                for row in 0..rows {
                    let src = (row * src_w) as usize;
                    let dst = (((y >> shift) + row) * dst_w + (x >> shift)) as usize;
                    if let (Some(from), Some(to)) = (
                        tile.planes[p].get(src..src + cols),
                        plane.get_mut(dst..dst + cols),
                    ) {
                        to.copy_from_slice(from);
                    }
                }
            }
        }
        planes
    }
}

/// A tile's picture: I420, packed planes of `size` pixels.
#[derive(Debug, Clone, Copy)]
pub struct Tile<'a> {
    /// Width and height, pixels.
    pub size: (u32, u32),
    /// The Y, U and V planes.
    pub planes: [&'a [u8]; 3],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_hours() -> Layout {
        Layout::new(Duration::from_secs(7200), (1920, 1080))
    }

    #[test]
    fn a_two_hour_film_has_720_tiles_on_8_sheets() {
        let l = two_hours();
        assert_eq!(l.tile, (320, 180));
        assert_eq!((l.tiles(), l.sheets()), (720, 8));
        assert_eq!(l.tiles_of(7), 700..720);
        assert_eq!(l.rows(7), 2);
        assert_eq!(l.sheet_size(0), (3200, 1800));
        assert_eq!(l.sheet_size(7), (3200, 360));
        assert_eq!(l.place(123), (1, 3 * 320, 2 * 180));
        assert_eq!(l.sheet_at(Duration::from_secs(1005)), 1);
        assert_eq!(l.sheet_at(Duration::from_secs(99_999)), 7);
        // 4:3, a portrait phone clip, a 2.39:1 film.
        assert_eq!(Layout::new(l.duration, (640, 480)).tile, (320, 240));
        assert_eq!(Layout::new(l.duration, (1080, 1920)).tile, (320, 568));
        assert_eq!(Layout::new(l.duration, (1920, 804)).tile, (320, 134));
        assert_eq!(Layout::new(Duration::ZERO, (0, 0)).tiles(), 1);
    }

    #[test]
    fn the_webvtt_cues_cover_the_title_without_a_gap() {
        let l = Layout::new(Duration::from_millis(25_500), (1920, 1080));
        let vtt = l.webvtt(|s| format!("{}?t=k", sheet_name(s)));
        assert_eq!(
            vtt,
            "WEBVTT\n\
             \n00:00:00.000 --> 00:00:10.000\nsheet_00000.jpg?t=k#xywh=0,0,320,180\n\
             \n00:00:10.000 --> 00:00:20.000\nsheet_00000.jpg?t=k#xywh=320,0,320,180\n\
             \n00:00:20.000 --> 00:00:25.500\nsheet_00000.jpg?t=k#xywh=640,0,320,180\n"
        );
        let long = two_hours().webvtt(sheet_name);
        assert!(long
            .contains("\n01:59:50.000 --> 02:00:00.000\nsheet_00007.jpg#xywh=2880,180,320,180\n"));
    }

    #[test]
    fn the_image_playlist_lists_each_sheet_with_its_tiles() {
        let p = two_hours().image_playlist(sheet_name);
        assert!(p.contains("#EXT-X-TARGETDURATION:1000\n"), "{p}");
        assert!(p.contains("#EXT-X-IMAGES-ONLY\n"), "{p}");
        assert!(p.contains(
            "#EXTINF:1000.000,\n#EXT-X-TILES:RESOLUTION=320x180,LAYOUT=10x10,DURATION=10.000\nsheet_00000.jpg\n"
        ), "{p}");
        assert!(p.contains(
            "#EXTINF:200.000,\n#EXT-X-TILES:RESOLUTION=320x180,LAYOUT=10x2,DURATION=10.000\nsheet_00007.jpg\n#EXT-X-ENDLIST\n"
        ), "{p}");
    }

    #[test]
    fn tiles_are_put_in_their_places_cut_or_padded() {
        let l = Layout::new(Duration::from_secs(30), (4, 2));
        assert_eq!(l.tile, (320, 160));
        let y = vec![200u8; 320 * 170];
        let uv = vec![50u8; 160 * 85];
        let tall = Tile {
            size: (320, 170),
            planes: [&y, &uv, &uv],
        };
        let [ys, us, _] = l.compose(0, &[None, Some(tall)]);
        let w = 3200;
        assert_eq!(ys.len(), w * 160);
        assert_eq!(ys[0], 0, "no picture: black");
        assert_eq!(ys[320], 200, "tile 1 from x=320");
        assert_eq!(ys[159 * w + 639], 200, "cut to the tile's height");
        assert_eq!(ys[159 * w + 640], 0);
        assert_eq!(us[79 * 1600 + 160], 50);
        assert_eq!(sheet_index("sheet_00012.jpg"), Some(12));
        assert_eq!(sheet_index("sheet_12.jpg"), None);
        assert_eq!(sheet_index("../sheet_00012.jpg"), None);
    }
}
