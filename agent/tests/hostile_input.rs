//! Hostile input on the stable toolchain for the agent's parsers: plugin perfdata, DNS
//! answers, X.509 certificates. Mutations of valid seeds; none may panic. Bounded in count.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use vakt_agent::probe::{dns_wire, perfdata, x509};

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

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(6) {
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => v.truncate(rng.below(v.len())),
            2 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
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
fn parsers_survive_mutated_input() {
    let mut rng = Rng(0x5eed_0000_0000_0003);
    let perf_seed = b"DISK OK | /=2643MB;5948;5958;0;5968 'a b'=1.5s;;; c=10c pct=93%;80;90";
    let mut answer = dns_wire::build_query(0x1234, "example.com", dns_wire::TYPE_A).unwrap();
    answer[2] = 0x81;
    answer[3] = 0x80;
    answer[7] = 2;
    for rdata in [&[192u8, 0, 2, 1][..], &[0, 10, 0xC0, 12][..]] {
        answer.extend_from_slice(&[
            0xC0,
            12,
            0,
            if rdata.len() == 4 { 1 } else { 15 },
            0,
            1,
            0,
            0,
            0x0e,
            0x10,
            0,
            rdata.len() as u8,
        ]);
        answer.extend_from_slice(rdata);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
    let der = cert.der().to_vec();
    let n = 20_000;
    for _ in 0..n {
        let p = mutate(&mut rng, perf_seed);
        let _ = perfdata::parse(&String::from_utf8_lossy(&p));
        let _ = dns_wire::parse_response(&mutate(&mut rng, &answer));
        let _ = x509::not_after(&mutate(&mut rng, &der));
    }
    eprintln!("perfdata, dns answers, certificates: {n} mutated inputs each, no panic");
    // The seeds themselves still parse.
    assert!(dns_wire::parse_response(&answer).is_ok());
    assert!(x509::not_after(&der).is_ok());
}
