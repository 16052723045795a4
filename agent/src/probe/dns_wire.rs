//! The DNS message format (RFC 1035), as much as a probe needs: one question out, the answer
//! section back, with name compression. Hostile input yields an error, never a panic.

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;

pub fn type_code(name: &str) -> Option<u16> {
    Some(match name {
        "A" => TYPE_A,
        "AAAA" => TYPE_AAAA,
        "CNAME" => TYPE_CNAME,
        "MX" => TYPE_MX,
        "TXT" => TYPE_TXT,
        "NS" => TYPE_NS,
        _ => return None,
    })
}

pub fn rcode_name(code: u8) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        other => format!("RCODE{other}"),
    }
}

/// A query for `name` with recursion desired.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00]); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // 1 question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name:?} is not a valid DNS name"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() > 12 + 255 {
        return Err(format!("{name:?} is longer than 255 bytes"));
    }
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(out)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    /// The record's data as text: an address, a name, "10 mx.example.com", or TXT strings.
    pub data: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
    pub answers: Vec<Answer>,
}

fn u16_at(buf: &[u8], at: usize) -> Result<u16, String> {
    buf.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "truncated message".to_string())
}

fn u32_at(buf: &[u8], at: usize) -> Result<u32, String> {
    buf.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| "truncated message".to_string())
}

/// Reads a possibly compressed name at `at`; returns it and the offset after it.
fn read_name(buf: &[u8], mut at: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *buf.get(at).ok_or("truncated name")?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Ok((if name.is_empty() { ".".into() } else { name }, end.unwrap_or(at + 1)));
            }
            0x00 => {
                let label = buf.get(at + 1..at + 1 + usize::from(len)).ok_or("truncated label")?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                if name.len() > 255 {
                    return Err("name longer than 255 bytes".into());
                }
                at += 1 + usize::from(len);
            }
            0xC0 => {
                let ptr = usize::from(u16_at(buf, at)? & 0x3FFF);
                end.get_or_insert(at + 2);
                at = ptr;
            }
            _ => return Err("bad label type".into()),
        }
    }
    Err("name compression loop".into())
}

pub fn parse_response(buf: &[u8]) -> Result<Response, String> {
    if buf.len() < 12 {
        return Err("message shorter than its header".into());
    }
    let id = u16_at(buf, 0)?;
    let flags = u16_at(buf, 2)?;
    if flags & 0x8000 == 0 {
        return Err("not a response".into());
    }
    let qdcount = u16_at(buf, 4)?;
    let ancount = u16_at(buf, 6)?;
    let mut at = 12;
    for _ in 0..qdcount {
        at = read_name(buf, at)?.1 + 4;
    }
    let mut answers = Vec::with_capacity(usize::from(ancount.min(64)));
    for _ in 0..ancount {
        let (name, next) = read_name(buf, at)?;
        let rtype = u16_at(buf, next)?;
        let ttl = u32_at(buf, next + 4)?;
        let rdlen = usize::from(u16_at(buf, next + 8)?);
        let rdata_at = next + 10;
        let rdata = buf.get(rdata_at..rdata_at + rdlen).ok_or("truncated record")?;
        let data = match rtype {
            TYPE_A if rdlen == 4 => std::net::Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string(),
            TYPE_AAAA if rdlen == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rdata);
                std::net::Ipv6Addr::from(b).to_string()
            }
            TYPE_CNAME | TYPE_NS => read_name(buf, rdata_at)?.0,
            TYPE_MX => format!("{} {}", u16_at(buf, rdata_at)?, read_name(buf, rdata_at + 2)?.0),
            TYPE_TXT => {
                let mut parts = Vec::new();
                let mut i = 0;
                while i < rdata.len() {
                    let n = usize::from(rdata[i]);
                    let s = rdata.get(i + 1..i + 1 + n).ok_or("truncated TXT")?;
                    parts.push(String::from_utf8_lossy(s).into_owned());
                    i += 1 + n;
                }
                parts.join("")
            }
            _ => format!("type {rtype}, {rdlen} bytes"),
        };
        answers.push(Answer { name, rtype, ttl, data });
        at = rdata_at + rdlen;
    }
    Ok(Response { id, rcode: (flags & 0x000F) as u8, truncated: flags & 0x0200 != 0, answers })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response as a server would build it, with compression pointers to the question.
    fn response(answers: &[(u16, &[u8])]) -> Vec<u8> {
        let mut q = build_query(0x1234, "example.com", TYPE_A).unwrap();
        q[2] = 0x81;
        q[3] = 0x80;
        q[7] = answers.len() as u8;
        for (rtype, rdata) in answers {
            q.extend_from_slice(&[0xC0, 12]);
            q.extend_from_slice(&rtype.to_be_bytes());
            q.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
            q.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            q.extend_from_slice(rdata);
        }
        q
    }

    #[test]
    fn parses_records_with_compression() {
        let mx = [&[0u8, 10][..], &[0xC0, 12]].concat();
        let cname = [&[3u8][..], b"www", &[0xC0, 12]].concat();
        let msg = response(&[
            (TYPE_A, &[192, 0, 2, 1]),
            (TYPE_MX, &mx),
            (TYPE_CNAME, &cname),
            (TYPE_TXT, b"\x05hello\x06 world"),
        ]);
        let r = parse_response(&msg).unwrap();
        assert_eq!(r.id, 0x1234);
        assert_eq!(r.rcode, 0);
        let data: Vec<&str> = r.answers.iter().map(|a| a.data.as_str()).collect();
        assert_eq!(data, ["192.0.2.1", "10 example.com", "www.example.com", "hello world"]);
        assert_eq!(r.answers[0].name, "example.com");
        assert_eq!(r.answers[0].ttl, 3600);
    }

    #[test]
    fn hostile_messages_are_errors() {
        let mut looped = response(&[(TYPE_CNAME, &[0xC0, 0x1D])]);
        let n = looped.len();
        looped[n - 2] = 0xC0;
        looped[n - 1] = (n - 2) as u8; // points at itself
        assert!(parse_response(&looped).is_err());
        let good = response(&[(TYPE_A, &[1, 2, 3, 4])]);
        for cut in 0..good.len() {
            let _ = parse_response(&good[..cut]); // no panic at any length
        }
        assert!(parse_response(&good[..good.len() - 1]).is_err());
        assert!(build_query(1, "a..b", TYPE_A).is_err());
    }
}
