//! Zeroed arrays of plain numbers whose large instances sit on huge pages.
//!
//! A training step reads its data set's rows in shuffled order, and its matrix products read
//! weights with a stride of one row per depth: with 4 KiB pages nearly every such read is on a
//! page of its own, and in a virtual machine a TLB miss costs a two-level page walk. Linux hands
//! out transparent huge pages (2 MiB) only where a program asks (`madvise` in
//! `/sys/kernel/mm/transparent_hugepage/enabled` is the common setting), so buffers of at least
//! [`HUGE_PAGE`] bytes are anonymous memory maps advised `MADV_HUGEPAGE`, and smaller ones plain
//! vectors. Where the advice is refused (huge pages off, another system) the map keeps ordinary
//! pages: slower, never wrong. (docs/benchmarks.md, fifth session, has the measurements.)

use std::fmt;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;
use memmap2::MmapMut;

/// Bytes in an x86-64 transparent huge page; smaller buffers gain nothing from a map.
pub const HUGE_PAGE: usize = 2 << 20;

/// `len` zeroed values of `T`.
pub struct Buffer<T: Pod> {
    storage: Storage<T>,
    len: usize,
}

enum Storage<T> {
    Small(Vec<T>),
    Mapped(MmapMut),
}

/// A buffer that could not be allocated: the bytes it needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError {
    pub bytes: u128,
}

/// A copy of `values` in a new vector, or the error when the memory is not there: copies whose
/// size a user's model decides (weights after training, a checkpoint's bytes) must not abort.
pub fn try_copy<T: Copy>(values: &[T]) -> Result<Vec<T>, AllocError> {
    let mut copy = Vec::new();
    copy.try_reserve_exact(values.len())
        .map_err(|_| AllocError {
            bytes: std::mem::size_of_val(values) as u128,
        })?;
    copy.extend_from_slice(values);
    Ok(copy)
}

impl<T: Pod> Buffer<T> {
    pub fn zeroed(len: usize) -> Result<Buffer<T>, AllocError> {
        let too_large = AllocError {
            bytes: len as u128 * std::mem::size_of::<T>() as u128,
        };
        let bytes = len.checked_mul(std::mem::size_of::<T>()).ok_or(too_large)?;
        let storage = if bytes < HUGE_PAGE {
            let mut values = Vec::new();
            values.try_reserve_exact(len).map_err(|_| too_large)?;
            values.resize(len, T::zeroed());
            Storage::Small(values)
        } else {
            // Whole huge pages, so that the last one is not left to 4 KiB pages.
            let mapped = bytes.checked_next_multiple_of(HUGE_PAGE).ok_or(too_large)?;
            let map = MmapMut::map_anon(mapped).map_err(|_| too_large)?;
            #[cfg(target_os = "linux")]
            // Advice, not a requirement: a refusal leaves ordinary pages.
            let _ = map.advise(memmap2::Advice::HugePage);
            Storage::Mapped(map)
        };
        Ok(Buffer { storage, len })
    }

    /// The values of `values`, in a buffer of its own.
    pub fn from_slice(values: &[T]) -> Result<Buffer<T>, AllocError> {
        let mut buffer = Buffer::zeroed(values.len())?;
        buffer.copy_from_slice(values);
        Ok(buffer)
    }

    /// Keeps the first `len` values (the memory stays allocated).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        if let Storage::Small(values) = &mut self.storage {
            values.truncate(len);
        }
    }

    /// Whether the values sit in a memory map (advised onto huge pages).
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }
}

impl<T: Pod> Deref for Buffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.storage {
            Storage::Small(values) => values,
            // A map starts on a page boundary, aligned for any `T`.
            Storage::Mapped(map) => &bytemuck::cast_slice(&map[..])[..self.len],
        }
    }
}

impl<T: Pod> DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let len = self.len;
        match &mut self.storage {
            Storage::Small(values) => values,
            Storage::Mapped(map) => &mut bytemuck::cast_slice_mut(&mut map[..])[..len],
        }
    }
}

impl<T: Pod> Clone for Buffer<T> {
    /// Panics only where `Vec::clone` would: when the copy cannot be allocated.
    fn clone(&self) -> Buffer<T> {
        Buffer::from_slice(self).expect("memory for a copy of a buffer")
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Pod + PartialEq> PartialEq for Buffer<T> {
    fn eq(&self, other: &Buffer<T>) -> bool {
        **self == **other
    }
}

impl<T: Pod + PartialEq> PartialEq<Vec<T>> for Buffer<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_start_zeroed_and_hold_what_is_written() {
        for len in [
            0,
            1,
            1000,
            HUGE_PAGE / 4 - 1,
            HUGE_PAGE / 4,
            3 * HUGE_PAGE / 4 + 5,
        ] {
            let mut buffer = Buffer::<f32>::zeroed(len).unwrap();
            assert_eq!(buffer.len(), len);
            assert_eq!(buffer.is_mapped(), len * 4 >= HUGE_PAGE, "{len}");
            assert!(buffer.iter().all(|&v| v == 0.0));
            for (i, v) in buffer.iter_mut().enumerate() {
                *v = i as f32;
            }
            let copy = buffer.clone();
            assert_eq!(copy, buffer);
            assert_eq!(copy.last().copied(), len.checked_sub(1).map(|i| i as f32));
        }
    }

    #[test]
    fn truncation_keeps_the_first_values() {
        let mut buffer = Buffer::from_slice(&[1, 2, 3, 4]).unwrap();
        buffer.truncate(2);
        assert_eq!(buffer, vec![1, 2]);
        buffer.truncate(9);
        assert_eq!(buffer.len(), 2);
    }

    #[test]
    fn an_impossible_size_is_an_error() {
        let error = Buffer::<f32>::zeroed(usize::MAX / 2).unwrap_err();
        assert_eq!(error.bytes, (usize::MAX / 2) as u128 * 4);
    }

    /// The map asks for huge pages: where the host grants them on request (`madvise` or
    /// `always` in `/sys/kernel/mm/transparent_hugepage/enabled`), the kernel marks the mapping
    /// eligible. (Whether a fault then finds a free 2 MiB page depends on the host's memory, so
    /// the pages themselves are not asserted.)
    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_buffer_asks_for_huge_pages() {
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let smaps = |buffer: &Buffer<u8>| {
            let text = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
            mapping_field(&text, buffer.as_ptr() as usize, "THPeligible:")
        };
        let buffer = Buffer::<u8>::zeroed(4 * HUGE_PAGE).unwrap();
        let eligible = smaps(&buffer);
        if setting.contains("[never]") || eligible.is_none() {
            return;
        }
        assert_eq!(eligible, Some(1), "with {setting}");
    }

    /// The number after `field` in the `/proc/self/smaps` entry of the mapping holding
    /// `address`.
    fn mapping_field(smaps: &str, address: usize, field: &str) -> Option<u64> {
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((from, to)) = range.split_once('-')
                && let (Ok(from), Ok(to)) = (
                    usize::from_str_radix(from, 16),
                    usize::from_str_radix(to, 16),
                )
            {
                inside = (from..to).contains(&address);
            } else if inside && let Some(rest) = line.strip_prefix(field) {
                return rest.split_whitespace().next()?.parse().ok();
            }
        }
        None
    }
}
