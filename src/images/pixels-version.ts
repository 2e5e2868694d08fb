/**
 * Part of every model's cache identity (cache/keys.ts): bump it when modelPixels
 * (images/preprocess.ts) gives other pixels for the same bytes, so that results and indexes
 * made from the old pixels are made again. p2: JPEGs are scaled in the decoder (images/jpeg.ts).
 * p3: embedded ICC profiles are ignored by default (the sidecar's colorProfile).
 */
export const PIXELS_VERSION = 'p3';
