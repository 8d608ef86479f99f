//! The memory this process may still use, read from Linux's /proc: the smaller of the machine's
//! available memory (`MemAvailable`) and what the address-space limit (`RLIMIT_AS`, as
//! `prlimit --as` or `ulimit -v` set it) leaves beside the address space already mapped.
//! Elsewhere (no /proc) nothing is known and nothing is refused.

/// What limits the memory a fit may use, and how much it leaves.
#[derive(Clone, Debug, PartialEq)]
pub struct Available {
    pub bytes: u128,
    /// Where the figure comes from, in words.
    pub source: String,
}

/// The memory available now, or `None` when /proc does not say.
pub fn available() -> Option<Available> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    let status = std::fs::read_to_string("/proc/self/status").ok();
    from_proc(meminfo.as_deref(), limits.as_deref(), status.as_deref())
}

/// `available` from the texts of /proc/meminfo, /proc/self/limits and /proc/self/status.
pub fn from_proc(
    meminfo: Option<&str>,
    limits: Option<&str>,
    status: Option<&str>,
) -> Option<Available> {
    let machine = meminfo
        .and_then(|m| kib_field(m, "MemAvailable:"))
        .map(|bytes| Available {
            bytes,
            source: "the machine's available memory (MemAvailable in /proc/meminfo)".to_string(),
        });
    let limit = limits.and_then(address_space_limit).map(|limit| {
        let mapped = status.and_then(|s| kib_field(s, "VmSize:")).unwrap_or(0);
        Available {
            bytes: limit.saturating_sub(mapped),
            source: format!(
                "the address-space limit (RLIMIT_AS) of {}, less the {} already mapped",
                gib(limit),
                gib(mapped)
            ),
        }
    });
    match (machine, limit) {
        (Some(a), Some(b)) => Some(if b.bytes < a.bytes { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// A `NAME:   123 kB` field of /proc, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u128> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u128 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft limit on `Max address space` in /proc/self/limits, if there is one.
fn address_space_limit(limits: &str) -> Option<u128> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn gib(bytes: u128) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str =
        "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8388608 kB\n";
    const UNLIMITED: &str = "Limit                     Soft Limit           Hard Limit           Units\nMax address space         unlimited            unlimited            bytes\n";
    const LIMITED: &str = "Limit                     Soft Limit           Hard Limit           Units\nMax address space         4294967296           unlimited            bytes\n";
    const STATUS: &str = "Name:\tkiln\nVmPeak:\t  300000 kB\nVmSize:\t  1048576 kB\n";

    #[test]
    fn the_smaller_of_the_machine_and_the_limit() {
        let free = from_proc(Some(MEMINFO), Some(UNLIMITED), Some(STATUS)).unwrap();
        assert_eq!(free.bytes, 8 << 30);
        assert!(free.source.contains("MemAvailable"));
        let limited = from_proc(Some(MEMINFO), Some(LIMITED), Some(STATUS)).unwrap();
        assert_eq!(limited.bytes, 3 << 30);
        assert_eq!(
            limited.source,
            "the address-space limit (RLIMIT_AS) of 4.0 GiB, less the 1.0 GiB already mapped"
        );
        assert_eq!(from_proc(None, None, None), None);
        assert_eq!(from_proc(None, Some(LIMITED), None).unwrap().bytes, 4 << 30);
    }
}
