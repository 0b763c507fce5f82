{
  description = "hlsd: HTTP streaming server for media libraries (direct play or in-process GStreamer HLS)";

  # gstreamer-rs 0.25 needs Rust 1.92 or newer, hence unstable.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          nativeBuildInputs = with pkgs; [ cargo rustc rustfmt clippy pkg-config ffmpeg ];
          # The GStreamer setup hook puts these plugins on GST_PLUGIN_SYSTEM_PATH_1_0.
          buildInputs = with pkgs.gst_all_1; [
            gstreamer
            gstreamer.bin # gst-launch-1.0, gst-inspect-1.0 (fixtures, setup checks)
            gst-plugins-base
            gst-plugins-good
            gst-plugins-bad
            gst-plugins-ugly # x264enc
            gst-libav # avenc_aac and the libav decoders
          ] ++ [ pkgs.x264 ]; # hlsdx264enc (build.rs links libx264)
        };
      });
    };
}
