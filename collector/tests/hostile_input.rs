//! Hostile input on the stable toolchain: mutated configs and ingest bodies (byte flips,
//! truncations, insertions, splices of valid seeds) go through the real entry points; none may
//! panic. Bounded in count; prints how many inputs ran.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::Path;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"[",
    b"]",
    b"{",
    b"}",
    b"=",
    b"\n",
    b"\\u0000",
    b"99999999999999999999",
    b"-1",
    b"\xff\xfe",
    b"[[",
    b"\"\"\"",
    b"#",
];

fn mutate(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => v.truncate(rng.below(v.len())),
            2 => {
                let i = rng.below(v.len() + 1);
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(i..i, piece.iter().copied());
            }
            3 => {
                let other = seeds[rng.below(seeds.len())];
                let (a, b) = (rng.below(v.len() + 1), rng.below(other.len() + 1));
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            _ => {}
        }
    }
    v
}

#[test]
fn mutated_configs_never_panic_and_always_say_where() {
    let example = include_bytes!("../../config/examples/collector.toml");
    let seeds: Vec<&[u8]> =
        vec![example, b"listen = \"127.0.0.1:1\"\n[checks.a]\nkind = \"tcp\"\ntarget = \"h:1\"\nagents = [\"x\"]\n"];
    let mut rng = Rng(0x5eed_c0ff_ee00_0001);
    let n = 5_000;
    let mut rejected = 0;
    for _ in 0..n {
        let input = mutate(&mut rng, &seeds);
        let text = String::from_utf8_lossy(&input);
        if let Err(errors) = vakt_config::CollectorConfig::parse(&text, Path::new("fuzz.toml")) {
            rejected += 1;
            for d in &errors.0 {
                assert!(d.line >= 1 && d.column >= 1, "{d}");
                assert!(d.to_string().starts_with("fuzz.toml:"), "{d}");
            }
        }
    }
    eprintln!("config parse: {n} mutated inputs, {rejected} rejected with located errors, no panic");
    assert!(rejected > n / 10, "the mutations do reach the error paths");
}

#[test]
fn mutated_ingest_bodies_never_panic() {
    let json = br#"{"version":1,"agent":"a","sequence":7,"samples":[{"check":"web","timestamp_ms":1795000000000,"success":false,"latency_seconds":0.2,"values":{"status_code":500},"error":"status 500"}]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, json).unwrap();
    let gz = gz.finish().unwrap();
    let seeds: Vec<&[u8]> = vec![json, &gz];
    let mut rng = Rng(0x5eed_c0ff_ee00_0002);
    let n = 20_000;
    let mut accepted = 0;
    for i in 0..n {
        let input = mutate(&mut rng, &seeds);
        let encoding = if i % 2 == 0 { None } else { Some("gzip") };
        if let Ok(batch) = vakt_collector::http::ingest::decode(&input, encoding, 1 << 20) {
            accepted += 1;
            let _ = vakt_collector::http::ingest::validate(&batch, 1_795_000_000_000, 100_000);
        }
    }
    eprintln!("ingest decode: {n} mutated bodies, {accepted} decoded, no panic");
}
