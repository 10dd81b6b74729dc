//! The records both decode benches use: 9-byte keys and 100-byte JSON-like
//! values, so compressors see what an event stream gives them.

use odradek_core::records::NewRecord;

/// A 100-byte JSON-like value for record `i`.
fn value(i: usize) -> Vec<u8> {
    let mut v = format!(
        "{{\"id\":{i},\"user\":\"user-{:04}\",\"event\":\"click\",\"ts\":{},\"page\":\"/p/{}\"",
        i * 7919 % 10_000,
        1_700_000_000_000u64 + i as u64 * 13,
        i % 97
    )
    .into_bytes();
    v.resize(99, b' ');
    v.push(b'}');
    v
}

/// `count` records with keys `key-00000`, ... and millisecond timestamps.
pub fn records(count: usize) -> impl Iterator<Item = NewRecord> {
    (0..count).map(|i| {
        NewRecord::new()
            .with_key(format!("key-{i:05}"))
            .with_value(value(i))
            .with_timestamp(1_700_000_000_000 + i as i64)
    })
}
