//! Just enough DER to read a certificate's validity period: no X.509 library for two dates.

/// Unix seconds of `notAfter` in a DER certificate.
pub fn not_after(der: &[u8]) -> Result<i64, String> {
    let (cert, _) = tlv(der, 0x30).map_err(|e| format!("certificate: {e}"))?;
    let (tbs, _) = tlv(cert, 0x30).map_err(|e| format!("tbsCertificate: {e}"))?;
    let mut rest = tbs;
    if rest.first() == Some(&0xA0) {
        rest = tlv(rest, 0xA0)?.1; // [0] version
    }
    rest = tlv(rest, 0x02)?.1; // serialNumber
    rest = tlv(rest, 0x30)?.1; // signature algorithm
    rest = tlv(rest, 0x30)?.1; // issuer
    let (validity, _) = tlv(rest, 0x30).map_err(|e| format!("validity: {e}"))?;
    let rest = skip_time(validity)?; // notBefore
    parse_time(rest)
}

/// Splits one TLV with tag `tag` off `data`: (contents, rest).
fn tlv(data: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let (&t, rest) = data.split_first().ok_or("truncated")?;
    if t != tag {
        return Err(format!("expected tag {tag:#04x}, found {t:#04x}"));
    }
    let (&first, mut rest) = rest.split_first().ok_or("truncated length")?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad length".into());
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err("truncated contents".into());
    }
    Ok((&rest[..len], &rest[len..]))
}

fn skip_time(data: &[u8]) -> Result<&[u8], String> {
    match data.first() {
        Some(0x17) => Ok(tlv(data, 0x17)?.1),
        Some(0x18) => Ok(tlv(data, 0x18)?.1),
        _ => Err("validity: expected a time".into()),
    }
}

fn parse_time(data: &[u8]) -> Result<i64, String> {
    let (text, year) = match data.first() {
        Some(0x17) => {
            let (t, _) = tlv(data, 0x17)?;
            let yy = digits(t, 0, 2)?; // checks the length before the slice below
            (&t[2..], if yy >= 50 { 1900 + yy } else { 2000 + yy }) // RFC 5280 4.1.2.5.1
        }
        Some(0x18) => {
            let (t, _) = tlv(data, 0x18)?;
            // digits() checks the length before the slice below.
            let year = digits(t, 0, 4)?;
            (&t[4..], year)
        }
        _ => return Err("notAfter: expected a time".into()),
    };
    if text.len() < 11 || text[10] != b'Z' {
        return Err("notAfter: expected MMDDHHMMSSZ".into());
    }
    let (month, day) = (digits(text, 0, 2)?, digits(text, 2, 2)?);
    let (hour, minute, second) = (digits(text, 4, 2)?, digits(text, 6, 2)?, digits(text, 8, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return Err("notAfter: date out of range".into());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn digits(t: &[u8], at: usize, n: usize) -> Result<i64, String> {
    let s = t.get(at..at + n).ok_or("time too short")?;
    s.iter().try_fold(0i64, |acc, b| {
        if b.is_ascii_digit() {
            Ok(acc * 10 + i64::from(b - b'0'))
        } else {
            Err("not a digit".to_string())
        }
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 25), 20_782);
    }

    #[test]
    fn reads_not_after_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 6, 15);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after(cert.der()).unwrap(), days_from_civil(2031, 6, 15) * 86_400);
        // Beyond 2049 the time is a GeneralizedTime.
        params.not_after = rcgen::date_time_ymd(2060, 1, 2);
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after(cert.der()).unwrap(), days_from_civil(2060, 1, 2) * 86_400);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // Found by the hostile-input harness: a GeneralizedTime shorter than its year.
        let short_time = [0x30, 0x0b, 0x30, 0x09, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00];
        assert!(not_after(&short_time).is_err());
        assert!(parse_time(&[0x18, 0x02, b'2', b'0']).is_err());
        assert!(parse_time(&[0x17, 0x01, b'2']).is_err());
        for bad in [&b""[..], b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x03\x30\x01\x00", b"\x02\x01\x00"] {
            assert!(not_after(bad).is_err());
        }
    }
}
