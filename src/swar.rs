//! Eight bytes at a time in a `u64`: the bit tricks the JSON string scanners and the
//! terminal-safety scan share.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `i`, if there are eight.
pub fn word(b: &[u8], i: usize) -> Option<u64> {
    let mut word = [0u8; 8];
    word.copy_from_slice(b.get(i..i + 8)?);
    Some(u64::from_le_bytes(word))
}

/// `byte` in every byte.
pub fn splat(byte: u8) -> u64 {
    ONES * u64::from(byte)
}

/// High bit set in each byte of `w` that is zero; exact up to and including the lowest
/// such byte, which is the only one read.
pub fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// High bit set in each byte of `w` below 0x20 (exact up to the lowest, as above).
pub fn below_space(w: u64) -> u64 {
    w.wrapping_sub(splat(0x20)) & !w & HIGHS
}

/// Whether all eight bytes of `w` are printable ASCII (0x20 to 0x7E).
pub fn all_printable_ascii(w: u64) -> bool {
    (w & HIGHS) | below_space(w) | zero_bytes(w ^ splat(0x7f)) == 0
}

/// The offset of the lowest byte marked in `stops`.
pub fn first(stops: u64) -> usize {
    (stops.trailing_zeros() / 8) as usize
}
