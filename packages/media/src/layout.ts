/**
 * Where compose-video puts each overlay, in whole background pixels: pure, so the editor's placement preview draws
 * the boxes with the same rule ffmpeg is given (`@vp/media/layout`, no Node APIs here).
 */
import { MediaError } from "./errors";

export type OverlayPosition = "top-left" | "top-right" | "bottom-left" | "bottom-right" | "center" | "custom";
export interface OverlaySpec {
  /** Corner preset, centre, or custom (x/y). Default: bottom-right for the first overlay, then the other corners. */
  position?: OverlayPosition;
  /** Top-left corner of the overlay's box (border included), in background pixels; custom only. */
  x?: number;
  y?: number;
  /** Width of the overlay (without border) as a fraction of the background's width; default 0.25. */
  size?: number;
  /** When the overlay appears, seconds into the background; default 0. */
  startSeconds?: number;
  /** Radius of rounded corners in pixels; default 0 (square). */
  cornerRadius?: number;
  /** Width of a border around the overlay in pixels; default 0. */
  borderWidth?: number;
  /** Border colour: a name ("white") or #RRGGBB; default white. */
  borderColor?: string;
  /** Distance from the frame's edges for the presets, in pixels; default 2.5 % of the shorter side. */
  margin?: number;
}

export interface OverlayLayout {
  /** Box of the overlay in the output, border included. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The scaled picture inside the border. */
  innerWidth: number;
  innerHeight: number;
  border: number;
  borderColor: string;
  radius: number;
  startSeconds: number;
}

const DEFAULT_SIZE = 0.25;
/** Where overlays without a position go, by index. */
export const DEFAULT_CORNERS: readonly OverlayPosition[] = ["bottom-right", "top-right", "bottom-left", "top-left"];
/** Colour names and hex codes only: the value is spliced into a filter graph, where `:`/`,`/`;` would inject. */
const COLOR = /^(?:[A-Za-z]{1,32}|#[0-9A-Fa-f]{6})$/;

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);
const clamp = (n: number, lo: number, hi: number) => Math.min(Math.max(n, lo), Math.max(lo, hi));

/**
 * Where an overlay goes and how big it is, all in whole pixels computed here (so the filter graph holds
 * only numbers): its width is `size` x the background's width, its height keeps its aspect, the box
 * (border included) stays inside the frame.
 */
export function overlayLayout(
  background: { width: number; height: number },
  overlay: { width: number; height: number },
  spec: OverlaySpec = {},
  index = 0,
): OverlayLayout {
  const { width: W, height: H } = background;
  const size = spec.size ?? DEFAULT_SIZE;
  if (!(size > 0 && size <= 1)) throw new MediaError(`overlay ${index + 1}: size must be a fraction of the width, above 0 and at most 1`);
  const border = Math.max(0, Math.round(spec.borderWidth ?? 0));
  const borderColor = spec.borderColor ?? "white";
  if (!COLOR.test(borderColor)) throw new MediaError(`overlay ${index + 1}: borderColor must be a colour name or #RRGGBB`);
  const aspect = overlay.height / overlay.width;
  let innerWidth = even(W * size);
  let innerHeight = even(innerWidth * aspect);
  // A tall overlay at a large size would not fit: shrink it to the frame, keeping its aspect.
  const fit = Math.min(1, (W - 2 * border) / innerWidth, (H - 2 * border) / innerHeight);
  if (fit < 1) {
    innerWidth = even(innerWidth * fit - 1);
    innerHeight = even(innerHeight * fit - 1);
  }
  const width = innerWidth + 2 * border;
  const height = innerHeight + 2 * border;
  const margin = Math.round(spec.margin ?? Math.min(W, H) * 0.025);
  const position = spec.position ?? DEFAULT_CORNERS[index % DEFAULT_CORNERS.length]!;
  const right = W - width - margin;
  const bottom = H - height - margin;
  const [x, y]: readonly [number, number] = (
    {
      "top-left": [margin, margin],
      "top-right": [right, margin],
      "bottom-left": [margin, bottom],
      "bottom-right": [right, bottom],
      center: [(W - width) / 2, (H - height) / 2],
      custom: [spec.x ?? 0, spec.y ?? 0],
    } satisfies Record<OverlayPosition, [number, number]>
  )[position];
  const radius = Math.min(Math.max(0, Math.round(spec.cornerRadius ?? 0)), Math.floor(Math.min(width, height) / 2));
  const startSeconds = Math.max(0, spec.startSeconds ?? 0);
  return {
    x: Math.round(clamp(x, 0, W - width)),
    y: Math.round(clamp(y, 0, H - height)),
    width,
    height,
    innerWidth,
    innerHeight,
    border,
    borderColor: borderColor.startsWith("#") ? `0x${borderColor.slice(1)}` : borderColor,
    radius,
    startSeconds,
  };
}
