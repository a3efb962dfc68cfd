//! Geolocation: is a location attestation (IP address and/or GPS fix) inside the
//! jurisdiction's configured area? IP ranges are CIDR blocks; the area outline is a polygon
//! in millionths of a degree, tested with exact integer arithmetic (no floats in decisions).

use super::Detail;
use crate::jurisdiction::GeoRules;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What the client (or its geolocation provider) claims about where the player is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoAttestation {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub lat_e6: Option<i64>,
    #[serde(default)]
    pub lon_e6: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let net: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { net, prefix })
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// Even-odd ray casting on `[lat, lon]` points; the cross-multiplication is done in i128 so
/// it is exact.
pub fn inside_polygon(poly: &[[i64; 2]], lat: i64, lon: i64) -> bool {
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let ([yi, xi], [yj, xj]) = (poly[i], poly[j]);
        if (yi > lat) != (yj > lat) {
            // lon < xi + (lat - yi) * (xj - xi) / (yj - yi), without division.
            let lhs = (lon as i128 - xi as i128) * (yj as i128 - yi as i128);
            let rhs = (lat as i128 - yi as i128) * (xj as i128 - xi as i128);
            let crosses = if yj > yi { lhs < rhs } else { lhs > rhs };
            if crosses {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Check an attestation against the area. Every configured method must pass; a missing
/// attestation, or a missing part a method needs, fails (fail closed).
pub fn check(rules: &GeoRules, att: Option<&GeoAttestation>) -> Result<Detail, String> {
    let Some(att) = att else {
        return Err(format!(
            "presence in {} required; no location attestation",
            rules.area
        ));
    };
    let mut ip_in_range = None;
    if !rules.ip_cidrs.is_empty() {
        let ip: IpAddr = att
            .ip
            .as_deref()
            .ok_or_else(|| format!("IP address required to check presence in {}", rules.area))?
            .parse()
            .map_err(|_| "attested IP is not an IP address".to_string())?;
        if !rules
            .ip_cidrs
            .iter()
            .filter_map(|c| Cidr::parse(c))
            .any(|c| c.contains(ip))
        {
            return Err(format!("IP {ip} is not in {}'s ranges", rules.area));
        }
        ip_in_range = Some(ip);
    }
    if !rules.polygon_e6.is_empty() {
        let (Some(lat), Some(lon)) = (att.lat_e6, att.lon_e6) else {
            return Err(format!(
                "GPS fix required to check presence in {}",
                rules.area
            ));
        };
        if !inside_polygon(&rules.polygon_e6, lat, lon) {
            return Err(format!(
                "GPS {lat},{lon} (1e-6 deg) is outside {}",
                rules.area
            ));
        }
    }
    Ok(Detail::GeoInside {
        area: rules.area.clone(),
        ip: ip_in_range,
        gps: !rules.polygon_e6.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.255.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn polygon() {
        // A square 0..10 x 0..10 degrees.
        let sq = [
            [0, 0],
            [0, 10_000_000],
            [10_000_000, 10_000_000],
            [10_000_000, 0],
        ];
        assert!(inside_polygon(&sq, 5_000_000, 5_000_000));
        assert!(!inside_polygon(&sq, 11_000_000, 5_000_000));
        assert!(!inside_polygon(&sq, 5_000_000, -1));
    }

    #[test]
    fn fail_closed() {
        let r = GeoRules {
            area: "Box".into(),
            ip_cidrs: vec!["192.0.2.0/24".into()],
            polygon_e6: vec![[0, 0], [0, 10], [10, 10], [10, 0]],
        };
        assert!(check(&r, None).is_err());
        let mut a = GeoAttestation {
            ip: Some("192.0.2.7".into()),
            lat_e6: Some(5),
            lon_e6: Some(5),
        };
        assert!(check(&r, Some(&a)).is_ok());
        a.lat_e6 = None;
        assert!(check(&r, Some(&a)).is_err());
        a.lat_e6 = Some(5);
        a.ip = Some("198.51.100.1".into());
        assert!(check(&r, Some(&a)).is_err());
    }
}
