//! Pseudo-random inputs for the parsers' never-panic tests: a cheap,
//! deterministic stand-in for fuzzing, built from the pieces that matter
//! to each parser (separators, CR, NUL, invalid UTF-8, known keys).

/// `count` inputs, each the concatenation of up to `max_pieces - 1` pieces
/// drawn by an xorshift64 generator seeded with `seed` (so failures repeat).
pub fn inputs<T: Clone>(
    seed: u64,
    count: usize,
    max_pieces: u64,
    pieces: &[T],
) -> impl Iterator<Item = Vec<T>> + '_ {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |_| {
        let len = next() % max_pieces;
        (0..len)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize].clone())
            .collect()
    })
}
