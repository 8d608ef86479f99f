//! The matrix products JIT'd code hands to native code (`kiln_sgemm`), computed without allocating
//! and, for large products, on several threads with bit-identical results.
//!
//! The `gemm` crate's entry point allocates its packing buffers on every call (a dozen small
//! allocations per seed step) and its only threading is a rayon pool. So Kiln drives the same
//! register kernels itself: the `gemm-f32` crate's AVX2/FMA micro-kernels (a 16×6 tile of
//! `f32x8` accumulators), fed by a BLIS-style blocked loop written here whose packing buffers are
//! planned once per compiled step ([`Gemm::for_graph`], sized from the graph's products at
//! `max_batch`) and handed to the step by [`CompiledStep::run`](super::CompiledStep::run).
//!
//! Orientation: the micro-kernels prefer a column-major destination, and Kiln's are row-major,
//! so `C = A·B` (`C` m×n row-major) is normally computed as the column-major `Cᵀ = Bᵀ·Aᵀ`:
//! below, "rows" are then the columns of `C` (the kernel's `MR` direction) and "columns" are the
//! rows of `C`. A product with few output columns (a 10-class layer) wastes most of each
//! `MR`-row tile that way, so it is computed the other way round (see [`transposes_output`]).
//!
//! Determinism: every element of the result is one micro-kernel's accumulation over `k` in
//! blocks of `kc`, and `kc` depends only on `k`. Threads split the output into disjoint
//! tile-aligned slabs, each running the same loop nest on its slab, so no element's sum depends on
//! the thread count: one thread and two give bit-identical results (`tests/gemm_threads.rs`).
//!
//! Hosts without AVX2 and FMA (and non-x86 hosts) fall back to `gemm::gemm`, which allocates.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use gemm_common::microkernel::MicroKernelFn;

use super::{adam, window};
use crate::buffer::Buffer;
use crate::ir::{Graph, Op};

/// `f32` lanes of one vector register in the micro-kernels (AVX2: 8).
const LANES: usize = 8;
/// Rows of the micro-kernel's tile: two vectors.
const MR: usize = 2 * LANES;
/// Columns of the micro-kernel's tile.
const NR: usize = 6;
/// Largest depth block: a packed `MR×kc` panel of the left operand plus a `kc×NR` panel of the
/// right one stay in L1/L2 while a tile accumulates.
const KC: usize = 512;
/// Largest row block of the left operand packed at once (`MC×KC` floats, 256 KiB, in L2).
const MC: usize = 8 * MR;
/// Largest column block of the right operand packed at once (`KC×NC` floats, 4 MiB, in L3).
const NC: usize = 342 * NR;

/// Products of fewer multiply-adds than this run on the calling thread alone: waking a parked
/// worker costs tens of microseconds, more than splitting a smaller product saves.
pub const PARALLEL_MIN_MACS: usize = 1 << 21;

type Kernel = MicroKernelFn<f32>;
type KernelTable = [[Kernel; NR]; MR / LANES];

/// The micro-kernels this host can run, if it has AVX2 and FMA.
fn kernels() -> Option<&'static KernelTable> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(&gemm_f32::microkernel::fma::f32::UKR);
        }
    }
    None
}

/// One product as the micro-kernels see it: column-major `dst[rows×cols] = lhs[rows×k] ·
/// rhs[k×cols]`, every operand described by pointer and strides (elements), with the blocking.
#[derive(Clone, Copy)]
struct Problem {
    rows: usize,
    k: usize,
    dst: *mut f32,
    /// Strides between the destination's rows (1 unless the product is computed the other way
    /// round) and columns.
    dst_rs: isize,
    dst_cs: isize,
    lhs: *const f32,
    lhs_rs: isize,
    lhs_cs: isize,
    rhs: *const f32,
    rhs_rs: isize,
    rhs_cs: isize,
    kc: usize,
    pack_rhs: bool,
    /// Whether the micro-kernels read the left operand in place instead of a packed copy.
    direct_lhs: bool,
    /// The whole left operand packed beforehand (see [`ConstantRhs`]): depth block `pc` at
    /// `pc * round_up(rows, MR)`, its panels `MR * kb` apart.
    packed_lhs: Option<*const f32>,
}

// SAFETY: a `Problem` is only sent to a worker for the duration of one `kiln_sgemm` call, which
// waits for the worker to finish before returning; the pointers stay valid that long, and the
// workers write disjoint parts of `dst`.
unsafe impl Send for Problem {}

/// A part of a problem: a slab of its rows or of its columns.
#[derive(Clone, Copy)]
struct Task {
    problem: Problem,
    rows: (usize, usize),
    cols: (usize, usize),
}

fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// `kc`: `k` in equal blocks of at most `KC`. A function of `k` alone, which is what makes the
/// result independent of how the output is split.
fn depth_block(k: usize) -> usize {
    if k == 0 {
        return 0;
    }
    k.div_ceil(k.div_ceil(KC))
}

/// Whether `C[m×n]` is computed as `Cᵀ = Bᵀ·Aᵀ` (rows of the kernels' tiles along `C`'s
/// contiguous rows, stored by whole vectors) rather than as `C = A·B` (tiles along `C`'s
/// columns, stored value by value, and `A` usually packed). The first, unless padding `n` to
/// whole vectors wastes at least a fifth more multiply-adds than padding `m` would and `A` is
/// small enough to pack cheaply: a `[32, 10]` output as `Cᵀ` fills 10 of each 16-row tile, as
/// `C` all 32 (the seed step's 10-class products ran 1.4–1.6x faster that way). With `A` past
/// `MAX_PACKED_LHS` floats, packing it costs more than the padding (`wide`'s 256×10×1024 ran
/// 0.7x). A function of the shape alone, so the thread count never changes the order of a sum.
fn transposes_output(m: usize, n: usize, k: usize) -> bool {
    const MAX_PACKED_LHS: usize = 1 << 16;
    m * k > MAX_PACKED_LHS || 4 * round_up(n, LANES) * m < 5 * round_up(m, LANES) * n
}

/// `(rows, cols)` of an `m×n` product as the kernels see it, transposed or not (see
/// [`transposes_output`]).
fn sides(m: usize, n: usize, transposed: bool) -> (usize, usize) {
    if transposed { (n, m) } else { (m, n) }
}

/// Floats of packing scratch one thread needs for a product of `rows×cols` (the column-major
/// orientation) with depth `k`. Monotone in each argument, so the largest sizes bound every
/// smaller (ragged-batch) product.
fn scratch_len(rows: usize, cols: usize, k: usize) -> usize {
    let kc = k.min(KC);
    let lhs = round_up(rows, MR).min(MC) * kc;
    let rhs = kc * round_up(cols, NR).min(NC);
    lhs + rhs
}

/// Packing buffers of one thread, 64-byte aligned so that the kernels' vector loads of a packed
/// panel never straddle cache lines; large ones on huge pages (`crate::buffer`).
struct Scratch {
    buf: Buffer<f32>,
    start: usize,
}

impl Scratch {
    fn new(len: usize) -> Scratch {
        // At most a few MiB (`MC`, `KC`, `NC` bound it); like the `vec!` it replaces, it stops
        // the process only when the machine is out of memory.
        let buf: Buffer<f32> = Buffer::zeroed(len + 16).expect("memory for the packing buffers");
        let start = buf.as_ptr().align_offset(64);
        Scratch { buf, start }
    }

    fn get(&mut self) -> &mut [f32] {
        &mut self.buf[self.start..]
    }
}

/// Whether a packed copy of the right operand pays: it is reused by every row block, and
/// reading it unpacked with a large stride between depths leaves each tile's loads scattered.
/// (The `gemm` crate's rule for x86.) Not when a depth block of it fits in half the L1 cache:
/// there it stays however it is strided, and packing only adds a copy (`seed`'s three weight
/// gradients, 64×64×32 and smaller, ran 7–8% faster unpacked).
fn pack_rhs(rows: usize, cols: usize, kc: usize, rhs_rs: isize) -> bool {
    const L1_RESIDENT_BYTES: usize = 16 * 1024;
    if kc * cols * std::mem::size_of::<f32>() <= L1_RESIDENT_BYTES {
        return false;
    }
    if rhs_rs.unsigned_abs() == 1 {
        rows > 128 * MR
    } else {
        rows > 2 * MR
    }
}

/// Whether the left operand can be read in place: the micro-kernels load each depth's `MR`
/// rows as two aligned `f32x8` vectors (`*(ptr as *const __m256)`) and step between depths by
/// any stride, so an operand with contiguous rows (`lhs_rs == 1`), whole `MR`-row panels, and
/// every panel column on a 32-byte boundary is already in their layout. For the small products
/// of a training step (a weight matrix or a gradient, read once per product) this skips a copy
/// as large as the operand (the seed step's packing time fell by about a seventh).
///
/// Only while one depth block's panel spans at most `L1_BYTES` of memory: within an L1-sized
/// window no cache set holds more lines than it has ways. A wider stride puts a panel's lines
/// into a few sets (a 4 KiB stride, `wide`'s 1024 floats, puts all of them into one) and a page
/// apart, and the kernels then wait on L2 and the TLB: reading `wide`'s weights in place made
/// its 256×1024×1024 products ~1.5x slower than packing them.
fn direct_lhs(rows: usize, kc: usize, lhs: *const f32, lhs_rs: isize, lhs_cs: isize) -> bool {
    const VECTOR_BYTES: usize = LANES * std::mem::size_of::<f32>();
    const L1_BYTES: usize = 32 * 1024;
    lhs_rs == 1
        && rows.is_multiple_of(MR)
        && lhs.addr().is_multiple_of(VECTOR_BYTES)
        && lhs_cs.unsigned_abs().is_multiple_of(LANES)
        && kc * lhs_cs.unsigned_abs() * std::mem::size_of::<f32>() <= L1_BYTES
}

/// Copies `lhs[r0.., pc..]` (`mb×kb`) into `MR`-row panels, each `kb` columns of `MR` contiguous
/// values, rows past `mb` zeroed (the kernels always load whole vectors).
///
/// # Safety
/// `lhs` must be readable at every `(r, p)` with `r < mb`, `p < kb` through the strides, and
/// `out` must hold `round_up(mb, MR) * kb` floats.
unsafe fn pack_lhs(mb: usize, kb: usize, lhs: *const f32, rs: isize, cs: isize, out: &mut [f32]) {
    for (panel, out) in out[..round_up(mb, MR) * kb]
        .chunks_exact_mut(MR * kb)
        .enumerate()
    {
        let r0 = panel * MR;
        let h = MR.min(mb - r0);
        // SAFETY: rows r0..r0 + h < mb, columns < kb, as the caller guarantees.
        let base = unsafe { lhs.offset(r0 as isize * rs) };
        if rs == 1 && h == MR {
            for (p, col) in out.chunks_exact_mut(MR).enumerate() {
                // SAFETY: column p < kb, rows 0..MR of this panel. A fixed-size copy, which
                // compiles to two vector moves (a slice copy would call `memcpy` per column).
                let src = unsafe {
                    base.offset(p as isize * cs)
                        .cast::<[f32; MR]>()
                        .read_unaligned()
                };
                col.copy_from_slice(&src);
            }
        } else if rs == 1 {
            for (p, col) in out.chunks_exact_mut(MR).enumerate() {
                // SAFETY: column p < kb, rows 0..h of this panel.
                let src = unsafe { std::slice::from_raw_parts(base.offset(p as isize * cs), h) };
                col[..h].copy_from_slice(src);
                col[h..].fill(0.0);
            }
        } else if cfg!(target_arch = "x86_64") && cs == 1 && h == MR {
            // SAFETY: the panel's MR rows hold kb contiguous depths each (the caller's
            // guarantee with cs == 1), and `pack_lhs` only runs inside `compute`, which runs
            // only on hosts with AVX2 (see `kernels`).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                pack_transposed_panel(kb, base, rs, out)
            };
        } else {
            for col in out.chunks_exact_mut(MR) {
                col[h..].fill(0.0);
            }
            for r in 0..h {
                // SAFETY: row r < h of this panel.
                let row = unsafe { base.offset(r as isize * rs) };
                for (p, col) in out.chunks_exact_mut(MR).enumerate() {
                    // SAFETY: column p < kb.
                    col[r] = unsafe { *row.offset(p as isize * cs) };
                }
            }
        }
    }
}

/// Packs one whole panel whose rows are contiguous over the depths (a transposed operand, e.g.
/// the weight in `dz·Wᵀ`) as 8×8 blocks transposed in registers: eight row loads, 24 shuffles
/// and eight column stores per 64 values, where a scalar copy does 64 loads and 64 stores.
///
/// # Safety
/// The host must have AVX2; rows `base + r * rs` (`r < MR`) must be readable for `kb` floats;
/// `out` must hold `MR * kb` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pack_transposed_panel(kb: usize, base: *const f32, rs: isize, out: &mut [f32]) {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };
    let blocked = kb / 8 * 8;
    let out = &mut out[..MR * kb];
    for p0 in (0..blocked).step_by(8) {
        for r0 in [0, 8] {
            // SAFETY: rows r0..r0 + 8 <= MR and depths p0..p0 + 8 <= kb (the contract).
            let a: [_; 8] = std::array::from_fn(|r| unsafe {
                _mm256_loadu_ps(base.offset((r0 + r) as isize * rs + p0 as isize))
            });
            let t = [
                _mm256_unpacklo_ps(a[0], a[1]),
                _mm256_unpackhi_ps(a[0], a[1]),
                _mm256_unpacklo_ps(a[2], a[3]),
                _mm256_unpackhi_ps(a[2], a[3]),
                _mm256_unpacklo_ps(a[4], a[5]),
                _mm256_unpackhi_ps(a[4], a[5]),
                _mm256_unpacklo_ps(a[6], a[7]),
                _mm256_unpackhi_ps(a[6], a[7]),
            ];
            let u = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            // Column j of the block: depth p0 + j of rows r0..r0 + 8.
            let columns = [
                _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
                _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
            ];
            for (j, column) in columns.into_iter().enumerate() {
                let at = &mut out[(p0 + j) * MR + r0..][..8];
                // SAFETY: `at` holds 8 floats.
                unsafe { _mm256_storeu_ps(at.as_mut_ptr(), column) };
            }
        }
    }
    for p in blocked..kb {
        for r in 0..MR {
            // SAFETY: row r < MR, depth p < kb (the contract).
            out[p * MR + r] = unsafe { *base.offset(r as isize * rs + p as isize) };
        }
    }
}

/// Copies `rhs[pc.., c0..]` (`kb×nb`) into `NR`-column panels, each `kb` rows of `NR` contiguous
/// values, columns past `nb` zeroed.
///
/// # Safety
/// `rhs` must be readable at every `(p, c)` with `p < kb`, `c < nb` through the strides, and
/// `out` must hold `round_up(nb, NR) * kb` floats.
unsafe fn pack_rhs_panels(
    kb: usize,
    nb: usize,
    rhs: *const f32,
    rs: isize,
    cs: isize,
    out: &mut [f32],
) {
    for (panel, out) in out[..round_up(nb, NR) * kb]
        .chunks_exact_mut(NR * kb)
        .enumerate()
    {
        let c0 = panel * NR;
        let w = NR.min(nb - c0);
        if cs == 1 && w == NR {
            // Each depth's six values are contiguous: one fixed-size copy (the general loop
            // below tests and addresses every value, and it was most of the seed step's
            // weight-gradient packing).
            for (p, row) in out.chunks_exact_mut(NR).enumerate() {
                // SAFETY: p < kb and columns c0..c0 + NR lie within nb, as the caller guarantees.
                let src = unsafe {
                    rhs.offset(p as isize * rs + c0 as isize)
                        .cast::<[f32; NR]>()
                        .read_unaligned()
                };
                row.copy_from_slice(&src);
            }
            continue;
        }
        for (p, row) in out.chunks_exact_mut(NR).enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = if c < w {
                    // SAFETY: p < kb and c0 + c < nb, as the caller guarantees.
                    unsafe { *rhs.offset(p as isize * rs + (c0 + c) as isize * cs) }
                } else {
                    0.0
                };
            }
        }
    }
}

/// Runs `task` (a slab of a problem) on one thread with its packing buffers.
fn compute(task: &Task, kernels: &KernelTable, scratch: &mut Scratch) {
    let p = &task.problem;
    let (r0, r1) = task.rows;
    let (c0, c1) = task.cols;
    let (lhs_buf, rhs_buf) = scratch
        .get()
        .split_at_mut(round_up(p.rows, MR).min(MC) * p.kc);
    let mut jc = c0;
    while jc < c1 {
        let nb = NC.min(c1 - jc);
        let mut pc = 0;
        while pc < p.k {
            let kb = p.kc.min(p.k - pc);
            // The first depth block overwrites the destination, the later ones add to it.
            let status = u8::from(pc != 0);
            // SAFETY: (pc, jc) is inside the right operand (pc < k, jc < cols).
            let rhs_block = unsafe {
                p.rhs
                    .offset(pc as isize * p.rhs_rs + jc as isize * p.rhs_cs)
            };
            let (rhs, rhs_rs, rhs_cs, panel_step) = if p.pack_rhs {
                // SAFETY: the block is kb×nb inside the operand; `rhs_buf` was sized by
                // `scratch_len` for kc×min(cols, NC) rounded up to NR.
                unsafe { pack_rhs_panels(kb, nb, rhs_block, p.rhs_rs, p.rhs_cs, rhs_buf) };
                (rhs_buf.as_ptr(), NR as isize, 1, (NR * kb) as isize)
            } else {
                (rhs_block, p.rhs_rs, p.rhs_cs, NR as isize * p.rhs_cs)
            };
            let mut ic = r0;
            while ic < r1 {
                let mb = MC.min(r1 - ic);
                // SAFETY: (ic, pc) is inside the left operand (ic < rows, pc < k).
                let lhs_block = unsafe {
                    p.lhs
                        .offset(ic as isize * p.lhs_rs + pc as isize * p.lhs_cs)
                };
                // The left panels as the kernels read them: pointer, step between panels,
                // step between depths.
                let (lhs, lhs_panel, lhs_cs) = if let Some(packed) = p.packed_lhs {
                    // SAFETY: `ic` is a multiple of MR below `rows`, so this is panel `ic / MR`
                    // of depth block `pc`, inside the packed copy (`ConstantRhs::pack`).
                    let at = unsafe { packed.add(pc * round_up(p.rows, MR) + ic * kb) };
                    (at, MR * kb, MR as isize)
                } else if p.direct_lhs {
                    (lhs_block, MR, p.lhs_cs)
                } else {
                    // SAFETY: the block mb×kb at (ic, pc) is inside the left operand;
                    // `lhs_buf` holds MC×kc floats.
                    unsafe { pack_lhs(mb, kb, lhs_block, p.lhs_rs, p.lhs_cs, lhs_buf) };
                    (lhs_buf.as_ptr(), MR * kb, MR as isize)
                };
                for j in (0..nb).step_by(NR) {
                    let nr = NR.min(nb - j);
                    for i in (0..mb).step_by(MR) {
                        let mr = MR.min(mb - i);
                        let kernel = kernels[mr.div_ceil(LANES) - 1][nr - 1];
                        // SAFETY: the tile (ic + i .. + mr, jc + j .. + nr) lies inside the
                        // destination, which this task alone writes; the left panel holds kb
                        // columns of MR floats (packed, or in place: whole aligned panels, see
                        // `direct_lhs`); the right panel is kb×nr through its strides. The
                        // kernel reads/writes nothing else.
                        unsafe {
                            kernel(
                                mr,
                                nr,
                                kb,
                                p.dst.offset(
                                    (ic + i) as isize * p.dst_rs + (jc + j) as isize * p.dst_cs,
                                ),
                                lhs.add(i / MR * lhs_panel),
                                rhs.offset((j / NR) as isize * panel_step),
                                p.dst_cs,
                                p.dst_rs,
                                lhs_cs,
                                rhs_rs,
                                rhs_cs,
                                1.0,
                                1.0,
                                status,
                                false,
                                false,
                                false,
                                std::ptr::null(),
                            )
                        };
                    }
                }
                ic += mb;
            }
            pc += kb;
        }
        jc += nb;
    }
}

/// What a worker is handed: a slab of a product, or a range of Adam's update.
#[derive(Clone, Copy)]
enum Work {
    Product(Task),
    Update(adam::Chunk),
    Window(window::Part),
}

impl Work {
    fn run(&self, kernels: &KernelTable, scratch: &mut Scratch) {
        match self {
            Work::Product(task) => compute(task, kernels, scratch),
            Work::Update(chunk) => chunk.run(),
            Work::Window(part) => part.run(),
        }
    }
}

/// One parked worker thread and the slot it takes tasks from.
struct Worker {
    slot: Arc<Slot>,
    handle: Option<JoinHandle<()>>,
}

struct Slot {
    task: Mutex<Option<Work>>,
    /// Incremented for each posted task.
    posted: AtomicUsize,
    /// Set to `posted`'s value when that task is finished.
    done: AtomicUsize,
    quit: AtomicBool,
    /// Park at once instead of spinning until the next task (see `Gemm::rest`).
    rest: AtomicBool,
    /// Spin for the next task at all: not when there are more threads than cores, where a
    /// spinning worker takes the core a working thread needs (`--threads 256` on two cores
    /// ran a thousand times slower).
    spin: AtomicBool,
}

/// Spin iterations a worker waits for its next task before parking: a training step posts its
/// products microseconds apart, and an unpark costs more than that.
const WORKER_SPINS: usize = 1 << 16;

fn worker_loop(slot: &Slot, kernels: &KernelTable, mut scratch: Scratch) {
    let mut seen = 0;
    loop {
        let mut spins = 0;
        loop {
            if slot.quit.load(Ordering::Acquire) {
                return;
            }
            let posted = slot.posted.load(Ordering::Acquire);
            if posted != seen {
                seen = posted;
                break;
            }
            if spins < WORKER_SPINS
                && slot.spin.load(Ordering::Acquire)
                && !slot.rest.load(Ordering::Acquire)
            {
                spins += 1;
                std::hint::spin_loop();
            } else {
                thread::park();
            }
        }
        let work = slot.task.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(work) = work {
            work.run(kernels, &mut scratch);
        }
        slot.done.store(seen, Ordering::Release);
    }
}

/// Matrix-product state of one compiled step: its packing buffers and worker threads.
pub struct Gemm {
    kernels: Option<&'static KernelTable>,
    scratch: Scratch,
    scratch_len: usize,
    workers: Vec<Worker>,
    /// Whether waiting threads spin: only while there are no more threads than cores.
    spin: bool,
}

impl Gemm {
    /// Buffers for the products of `graph` at batches up to `max_batch`, and `threads - 1`
    /// workers (`threads` at least 1).
    pub(crate) fn for_graph(graph: &Graph, max_batch: usize, threads: usize) -> Gemm {
        Gemm::for_products(products(graph, max_batch), threads)
    }

    /// Buffers for products `(m, n, k)` up to the given sizes, and `threads - 1` workers.
    pub fn for_products(
        products: impl IntoIterator<Item = (usize, usize, usize)>,
        threads: usize,
    ) -> Gemm {
        let scratch_len = products
            .into_iter()
            .map(|(m, n, k)| {
                let (rows, cols) = sides(m, n, transposes_output(m, n, k));
                scratch_len(rows, cols, k)
            })
            .max()
            .unwrap_or(0);
        let mut gemm = Gemm {
            kernels: kernels(),
            scratch: Scratch::new(scratch_len),
            scratch_len,
            workers: Vec::new(),
            spin: true,
        };
        gemm.set_threads(threads);
        gemm
    }

    /// Lets the workers park now rather than spin for the next product: for when another
    /// step will run meanwhile (two steps' spinning workers would take each other's cores).
    pub fn rest(&self) {
        for worker in &self.workers {
            worker.slot.rest.store(true, Ordering::Release);
        }
    }

    /// Threads a large product is split over (the caller's and the workers).
    pub fn threads(&self) -> usize {
        1 + self.workers.len()
    }

    /// Starts or stops workers so that large products use `threads` threads (at least 1).
    pub fn set_threads(&mut self, threads: usize) {
        let threads = threads.max(1);
        let Some(kernels) = self.kernels else {
            return;
        };
        while self.workers.len() > threads - 1 {
            self.workers.pop();
        }
        while self.workers.len() < threads - 1 {
            let slot = Arc::new(Slot {
                task: Mutex::new(None),
                posted: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
                quit: AtomicBool::new(false),
                rest: AtomicBool::new(false),
                spin: AtomicBool::new(false),
            });
            let scratch = Scratch::new(self.scratch_len);
            let theirs = Arc::clone(&slot);
            let handle = thread::Builder::new()
                .name(format!("kiln-gemm-{}", self.workers.len() + 1))
                .spawn(move || worker_loop(&theirs, kernels, scratch));
            match handle {
                Ok(handle) => self.workers.push(Worker {
                    slot,
                    handle: Some(handle),
                }),
                // No more threads to be had: run with the ones there are.
                Err(_) => break,
            }
        }
        // (Asked here, not per product: the answer reads the affinity mask and cgroup files.)
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        self.spin = self.threads() <= cores;
        for worker in &self.workers {
            worker.slot.spin.store(self.spin, Ordering::Release);
        }
    }

    /// `dst[m×n] = op(a)[m×k] · op(b)[k×n]`, `dst` row-major, the operands by strides.
    ///
    /// # Safety
    /// `dst` must be writable for `m×n` floats and not overlap the operands; `a` and `b` must be
    /// readable at every index their shapes and strides reach.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn sgemm(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        dst: *mut f32,
        a: *const f32,
        a_rs: isize,
        a_cs: isize,
        b: *const f32,
        b_rs: isize,
        b_cs: isize,
    ) {
        // SAFETY: the caller's contract.
        unsafe { self.sgemm_with(m, n, k, dst, a, a_rs, a_cs, b, b_rs, b_cs, None) }
    }

    /// Whether an `m×n×k` product is computed transposed (see [`transposes_output`]), if the
    /// kernels run it at all: the preferred orientation, or else the other. A ragged batch can
    /// prefer the other one than the planned size did, and then only the planned one is sure
    /// to fit (each orientation's scratch grows with every size). Both give the same bits.
    fn orientation(&self, m: usize, n: usize, k: usize) -> Option<bool> {
        self.kernels?;
        let preferred = transposes_output(m, n, k);
        let fits = |transposed: bool| {
            let (rows, cols) = sides(m, n, transposed);
            scratch_len(rows, cols, k) <= self.scratch_len
        };
        [preferred, !preferred].into_iter().find(|&t| fits(t))
    }

    /// `sgemm`, reading the left operand of the kernels from `packed_lhs` when given (packed
    /// by `ConstantRhs::pack` from this `b` for this shape).
    ///
    /// # Safety
    /// As `sgemm`; `packed_lhs` as said.
    #[allow(clippy::too_many_arguments)]
    unsafe fn sgemm_with(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        dst: *mut f32,
        a: *const f32,
        a_rs: isize,
        a_cs: isize,
        b: *const f32,
        b_rs: isize,
        b_cs: isize,
        packed_lhs: Option<*const f32>,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            // SAFETY: `dst` holds m×n floats (the caller's contract).
            unsafe { std::slice::from_raw_parts_mut(dst, m * n) }.fill(0.0);
            return;
        }
        let (kernels, transposed) = match (self.kernels, self.orientation(m, n, k)) {
            (Some(kernels), Some(transposed)) => (kernels, transposed),
            // No kernels for this host, or a product larger than planned (not one of the
            // graph's): the library, which allocates.
            _ => {
                // SAFETY: the caller's contract is the library's.
                unsafe { library_sgemm(m, n, k, dst, a, a_rs, a_cs, b, b_rs, b_cs) };
                return;
            }
        };
        let (rows, cols) = sides(m, n, transposed);
        // The operands as the kernels see them: `lhs` along the tiles' rows, `rhs` along their
        // columns, and the destination's strides.
        let ((lhs, lhs_rs, lhs_cs), (rhs, rhs_rs, rhs_cs), (dst_rs, dst_cs)) = if transposed {
            // Cᵀ[n×m] = Bᵀ·Aᵀ, column-major with unit row stride.
            ((b, b_cs, b_rs), (a, a_cs, a_rs), (1, n as isize))
        } else {
            // C[m×n] = A·B, the destination's rows `n` apart.
            ((a, a_rs, a_cs), (b, b_rs, b_cs), (n as isize, 1))
        };
        let kc = depth_block(k);
        let packed_lhs = packed_lhs.filter(|_| transposed);
        let problem = Problem {
            rows,
            k,
            dst,
            dst_rs,
            dst_cs,
            lhs,
            lhs_rs,
            lhs_cs,
            rhs,
            rhs_rs,
            rhs_cs,
            kc,
            pack_rhs: pack_rhs(rows, cols, kc, rhs_rs),
            direct_lhs: packed_lhs.is_none() && direct_lhs(rows, kc, lhs, lhs_rs, lhs_cs),
            packed_lhs,
        };
        let whole = Task {
            problem,
            rows: (0, rows),
            cols: (0, cols),
        };
        let parts = if m * n * k >= PARALLEL_MIN_MACS {
            self.threads()
        } else {
            1
        };
        if parts == 1 {
            compute(&whole, kernels, &mut self.scratch);
            return;
        }
        // Split the larger side into tile-aligned slabs; the caller takes the first.
        let slab = |len: usize, align: usize, t: usize| {
            let step = round_up(len.div_ceil(parts), align);
            ((t * step).min(len), ((t + 1) * step).min(len))
        };
        let part = |t: usize| {
            let mut task = whole;
            if rows >= cols {
                task.rows = slab(rows, MR, t);
            } else {
                task.cols = slab(cols, NR, t);
            }
            task
        };
        self.spread(kernels, &|t| Work::Product(part(t)));
    }

    /// Runs `work(0)` on this thread and `work(t)` on worker `t` (1-based), and waits for all.
    fn spread(&mut self, kernels: &KernelTable, work: &dyn Fn(usize) -> Work) {
        for (t, worker) in self.workers.iter().enumerate() {
            if let Ok(mut slot) = worker.slot.task.lock() {
                *slot = Some(work(t + 1));
            }
            worker.slot.rest.store(false, Ordering::Release);
            worker.slot.posted.fetch_add(1, Ordering::AcqRel);
            if let Some(handle) = &worker.handle {
                handle.thread().unpark();
            }
        }
        work(0).run(kernels, &mut self.scratch);
        // More threads than cores: give the core to a worker at once rather than spin.
        let max_spins = if self.spin { 1 << 12 } else { 0 };
        for worker in &self.workers {
            let posted = worker.slot.posted.load(Ordering::Acquire);
            let mut spins = 0usize;
            while worker.slot.done.load(Ordering::Acquire) != posted {
                spins += 1;
                if spins < max_spins {
                    std::hint::spin_loop();
                } else {
                    thread::yield_now();
                }
            }
        }
    }
}

/// `op(a)[m×k]` and `op(b)[k×n]` of row-major `a` and `b` (transposed when `ta`/`tb`) as
/// pointer and strides, after checking the slices' lengths.
#[allow(clippy::too_many_arguments)]
fn operands(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    dst: &[f32],
) -> (isize, isize, isize, isize) {
    assert_eq!(a.len(), m * k, "a is not {m}×{k}");
    assert_eq!(b.len(), k * n, "b is not {k}×{n}");
    assert_eq!(dst.len(), m * n, "dst is not {m}×{n}");
    let (a_rs, a_cs) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (b_rs, b_cs) = if tb { (1, k as isize) } else { (n as isize, 1) };
    (a_rs, a_cs, b_rs, b_cs)
}

impl Gemm {
    /// `dst[m×n] = op(a)·op(b)` on slices, `op` transposing when `ta`/`tb` (for benchmarks and
    /// tests; the step calls `sgemm`).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        ta: bool,
        b: &[f32],
        tb: bool,
        dst: &mut [f32],
    ) {
        let (a_rs, a_cs, b_rs, b_cs) = operands(m, n, k, a, ta, b, tb, dst);
        // SAFETY: the lengths were checked against the shapes and strides; `dst` is an
        // exclusive borrow, so it overlaps neither operand.
        unsafe {
            self.sgemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                a.as_ptr(),
                a_rs,
                a_cs,
                b.as_ptr(),
                b_rs,
                b_cs,
            )
        };
    }
}

/// [`Gemm::matmul`] through the `gemm` crate's own entry point (which allocates its packing
/// buffers on each call), for comparison.
#[allow(clippy::too_many_arguments)]
pub fn library_matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    dst: &mut [f32],
) {
    let (a_rs, a_cs, b_rs, b_cs) = operands(m, n, k, a, ta, b, tb, dst);
    // SAFETY: as in `Gemm::matmul`.
    unsafe {
        library_sgemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            a.as_ptr(),
            a_rs,
            a_cs,
            b.as_ptr(),
            b_rs,
            b_cs,
        )
    };
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.slot.quit.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            // A worker only runs `compute`, which does not panic on a planned problem; if it
            // did, there is nothing left to clean up.
            let _ = handle.join();
        }
    }
}

/// The `gemm` crate's product, for hosts without the micro-kernels.
///
/// # Safety
/// As [`Gemm::sgemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn library_sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    a: *const f32,
    a_rs: isize,
    a_cs: isize,
    b: *const f32,
    b_rs: isize,
    b_cs: isize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            false,
            a,
            a_cs,
            a_rs,
            b,
            b_cs,
            b_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        )
    }
}

/// `(m, n, k)` of every matrix product in `graph` at `batch` rows (a batch of products as its
/// largest call: one tall product when the right operand is shared, else one item).
fn products(graph: &Graph, batch: usize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    graph.nodes.iter().filter_map(move |node| {
        // A scan's product per step: `h·U` forward, `d rec·Uᵀ` backward.
        match &node.op {
            Op::Recurrence { cell } => return Some((batch, cell.gate_width(), cell.units)),
            Op::RecurrenceGrad { cell } => return Some((batch, cell.units, cell.gate_width())),
            Op::Contract | Op::MatMul { .. } => {}
            _ => return None,
        }
        let a = graph.shape(node.inputs[0]).resolve(batch);
        let b = graph.shape(node.inputs[1]).resolve(batch);
        let last = |dims: &[usize], from_end: usize| dims[dims.len() - from_end];
        match node.op {
            Op::Contract => {
                let m = last(&a, 1);
                Some((m, last(&b, 1), a.iter().product::<usize>() / m.max(1)))
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let (rows, cols) = (last(&a, 2), last(&a, 1));
                let (m, k) = if transpose_a {
                    (cols, rows)
                } else {
                    (rows, cols)
                };
                let n = if transpose_b {
                    last(&b, 2)
                } else {
                    last(&b, 1)
                };
                let lead: usize = a[..a.len() - 2].iter().product();
                let tall = b.len() == 2 && !transpose_a;
                Some((if tall { lead * m } else { m }, n, k))
            }
            _ => None,
        }
    })
}

/// Threads to use by default for a step of `graph` at `max_batch`: one unless some product is
/// large enough to split ([`PARALLEL_MIN_MACS`]), then as many as the process may run on
/// (`available_parallelism` follows the CPU affinity, so `taskset -c 0` means one), at most 2.
pub(crate) fn default_threads(graph: &Graph, max_batch: usize) -> usize {
    let largest = products(graph, max_batch)
        .map(|(m, n, k)| m * n * k)
        .max()
        .unwrap_or(0);
    if largest < PARALLEL_MIN_MACS {
        return 1;
    }
    thread::available_parallelism().map_or(1, |n| n.get().min(MAX_DEFAULT_THREADS))
}

/// The most threads chosen by default; more can be set with `CompiledStep::set_threads`.
const MAX_DEFAULT_THREADS: usize = 2;

thread_local! {
    /// The `Gemm` of the step running on this thread, installed by `CompiledStep::run` for the
    /// duration of its call into native code (`kiln_sgemm`'s signature is fixed by the JIT'd
    /// call, so the state cannot be an argument).
    static CURRENT: Cell<*mut Gemm> = const { Cell::new(std::ptr::null_mut()) };
}

/// Makes `gemm` the state `kiln_sgemm` uses on this thread until the guard is dropped.
pub(crate) fn install(gemm: &mut Gemm) -> Installed {
    Installed {
        previous: CURRENT.with(|c| c.replace(gemm)),
    }
}

pub(crate) struct Installed {
    previous: *mut Gemm,
}

impl Drop for Installed {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Threads the running step splits large work over (1 outside a step).
pub(crate) fn current_threads() -> usize {
    let gemm = CURRENT.with(Cell::get);
    // SAFETY: when set, `gemm` is the running step's own state, installed by `run` for its call
    // into native code, which is where this is called from.
    unsafe { gemm.as_ref() }.map_or(1, Gemm::threads)
}

/// Updates `part(t)` for every `t < threads` on the running step's threads (`threads` at most
/// `current_threads()`), and waits for all.
pub(crate) fn spread_update(threads: usize, part: &dyn Fn(usize) -> adam::Chunk) {
    spread_work(threads, &|t| Work::Update(part(t)), &|t| part(t).run());
}

/// Runs the windowed op's `part(t)` for every `t < threads` on the running step's threads, as
/// `spread_update` does.
pub(crate) fn spread_window(threads: usize, part: &dyn Fn(usize) -> window::Part) {
    spread_work(threads, &|t| Work::Window(part(t)), &|t| part(t).run());
}

/// `work(t)` on the running step's threads when it has that many, else `alone(t)` for each `t`
/// on this one.
fn spread_work(threads: usize, work: &dyn Fn(usize) -> Work, alone: &dyn Fn(usize)) {
    let gemm = CURRENT.with(Cell::get);
    // SAFETY: as in `current_threads`; the state is not otherwise borrowed during the call.
    if let Some(gemm) = unsafe { gemm.as_mut() }
        && let Some(kernels) = gemm.kernels
        && gemm.threads() == threads
    {
        gemm.spread(kernels, work);
    } else {
        (0..threads).for_each(alone);
    }
}

/// The right operand of many products `a·b` of one shape `m×n×k` with the same `b` (a scan's
/// recurrent kernel, one product per time step), packed once for all of them where the
/// kernels read it as their left operand (the output computed transposed), which every
/// product would otherwise copy again. Same panels, same kernel calls: the same bits.
#[derive(Clone, Copy)]
pub(crate) struct ConstantRhs {
    packed: Option<*const f32>,
}

impl ConstantRhs {
    /// Floats of buffer `pack` needs for a `k×n` right operand.
    pub(crate) fn buffer_len(n: usize, k: usize) -> usize {
        round_up(n, MR) * k + LANES
    }

    /// Packs `b` (`k×n`, by strides) into `buffer` (`buffer_len(n, k)` floats) for the running
    /// step's products `m×n×k`, when that pays; else products read `b` as usual.
    ///
    /// # Safety
    /// `b` must be readable at every index its shape and strides reach, and stay unchanged,
    /// like `buffer`, while the products that use the result run.
    pub(crate) unsafe fn pack(
        (m, n, k): (usize, usize, usize),
        b: *const f32,
        b_rs: isize,
        b_cs: isize,
        buffer: &mut [f32],
    ) -> ConstantRhs {
        let gemm = CURRENT.with(Cell::get);
        // SAFETY: as in `current_threads`.
        let Some(gemm) = (unsafe { gemm.as_ref() }) else {
            return ConstantRhs { packed: None };
        };
        let kc = depth_block(k);
        // The kernels' left operand is `b` transposed: rows `n`, row stride `b_cs`.
        let worth = m > 0
            && n > 0
            && k > 0
            && gemm.orientation(m, n, k) == Some(true)
            && !direct_lhs(n, kc, b, b_cs, b_rs)
            && buffer.len() >= Self::buffer_len(n, k);
        if !worth {
            return ConstantRhs { packed: None };
        }
        // Whole vectors on 32-byte boundaries, as the kernels load them.
        let start = buffer
            .as_ptr()
            .align_offset(LANES * std::mem::size_of::<f32>());
        let rows = round_up(n, MR);
        let packed = &mut buffer[start..start + rows * k];
        let mut pc = 0;
        while pc < k {
            let kb = kc.min(k - pc);
            // SAFETY: depths pc..pc + kb < k of `b` (the caller's contract); the block's
            // `rows * kb` floats lie in `packed`. `orientation` returned Some, so the host has
            // the kernels (and AVX2, which `pack_lhs` may use).
            unsafe {
                pack_lhs(
                    n,
                    kb,
                    b.offset(pc as isize * b_rs),
                    b_cs,
                    b_rs,
                    &mut packed[pc * rows..],
                )
            };
            pc += kb;
        }
        ConstantRhs {
            packed: Some(packed.as_ptr()),
        }
    }
}

/// `kiln_sgemm` for a right operand packed beforehand by `ConstantRhs::pack` (from this `b`,
/// for this shape).
///
/// # Safety
/// As `Gemm::sgemm`'s, and `constant` as said.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_constant_rhs(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    a: *const f32,
    a_rs: isize,
    a_cs: isize,
    b: *const f32,
    b_rs: isize,
    b_cs: isize,
    constant: ConstantRhs,
) {
    let gemm = CURRENT.with(Cell::get);
    // SAFETY: the caller's contract; `gemm`, when set, is the running step's own state, as in
    // `kiln_sgemm`.
    unsafe {
        match gemm.as_mut() {
            Some(gemm) => {
                gemm.sgemm_with(m, n, k, dst, a, a_rs, a_cs, b, b_rs, b_cs, constant.packed)
            }
            None => library_sgemm(m, n, k, dst, a, a_rs, a_cs, b, b_rs, b_cs),
        }
    }
}

/// Matrix product for JIT code: `dst[m×n] = op(a)[m×k] @ op(b)[k×n]`, `dst` row-major, the
/// operands described by row and column strides (in elements).
#[allow(clippy::too_many_arguments)]
pub(crate) extern "C" fn kiln_sgemm(
    m: i64,
    n: i64,
    k: i64,
    dst: *mut f32,
    a: *const f32,
    a_rs: i64,
    a_cs: i64,
    b: *const f32,
    b_rs: i64,
    b_cs: i64,
) {
    let (m, n, k) = (m.max(0) as usize, n.max(0) as usize, k.max(0) as usize);
    let (a_rs, a_cs, b_rs, b_cs) = (a_rs as isize, a_cs as isize, b_rs as isize, b_cs as isize);
    let gemm = CURRENT.with(Cell::get);
    // SAFETY: only called from the JIT'd step, whose pointers all point into the arena at
    // buffers planned for these shapes at `max_batch` (`run` asserts batch <= max_batch); `dst`
    // never overlaps `a` or `b` (the memory plan keeps a kernel's inputs alive while it writes).
    // `gemm`, when set, is the running step's own state, installed by `run` for this call and
    // not otherwise borrowed during it.
    unsafe {
        match gemm.as_mut() {
            Some(gemm) => gemm.sgemm(m, n, k, dst, a, a_rs, a_cs, b, b_rs, b_cs),
            None => library_sgemm(m, n, k, dst, a, a_rs, a_cs, b, b_rs, b_cs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible pseudo-random matrix of `len` values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// `op(a)·op(b)` in f64, row-major.
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        ta: bool,
        b: &[f32],
        tb: bool,
    ) -> Vec<f64> {
        let at = |i: usize, p: usize| if ta { a[p * m + i] } else { a[i * k + p] } as f64;
        let bt = |p: usize, j: usize| if tb { b[j * k + p] } else { b[p * n + j] } as f64;
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            }
        }
        out
    }

    fn product(gemm: &mut Gemm, m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Vec<f32> {
        let a = values(m * k, (m * 31 + k) as u64);
        let b = values(k * n, (n * 17 + k) as u64);
        let mut dst = vec![f32::NAN; m * n];
        gemm.matmul(m, n, k, &a, ta, &b, tb, &mut dst);
        let want = reference(m, n, k, &a, ta, &b, tb);
        for (i, (&got, &want)) in dst.iter().zip(&want).enumerate() {
            assert!(
                (got as f64 - want).abs() <= 1e-4 * (k as f64).sqrt() * (1.0 + want.abs()),
                "{m}×{n}×{k} ta={ta} tb={tb}: element {i} is {got}, want {want}"
            );
        }
        dst
    }

    fn planned(m: usize, n: usize, k: usize, threads: usize) -> Gemm {
        Gemm::for_products([(m, n, k)], threads)
    }

    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (3, 5, 7),
        (17, 13, 9),
        (32, 64, 32),
        (32, 10, 64),
        (64, 10, 32),
        (64, 32, 32),
        (33, 70, 600),
        (130, 20, 1100),
        (7, 2100, 5),
        (200, 150, 520),
    ];

    /// A scan's recurrent products: the kernel packed once (`ConstantRhs`) gives the bits every
    /// product packing it again gives, plain and transposed, on one thread and two.
    #[test]
    fn a_right_operand_packed_once_gives_the_same_bits() {
        for (m, n, k, transposed_b) in [
            (64, 512, 128, false),
            (64, 128, 512, true),
            (7, 384, 128, false),
        ] {
            for threads in [1, 2] {
                let mut gemm = planned(m, n, k, threads);
                let a = values(m * k, 1);
                let b = values(k * n, 2);
                let (b_rs, b_cs) = if transposed_b {
                    (1, k as isize)
                } else {
                    (n as isize, 1)
                };
                let mut expected = vec![0.0; m * n];
                // SAFETY: the vectors hold the m×k, k×n and m×n operands at these strides.
                unsafe {
                    let (dst, a_ptr, b_ptr) = (expected.as_mut_ptr(), a.as_ptr(), b.as_ptr());
                    gemm.sgemm(m, n, k, dst, a_ptr, k as isize, 1, b_ptr, b_rs, b_cs)
                };
                let _installed = install(&mut gemm);
                let mut buffer = vec![0.0; ConstantRhs::buffer_len(n, k)];
                // SAFETY: as above; `b` and `buffer` outlive the product below.
                let constant =
                    unsafe { ConstantRhs::pack((m, n, k), b.as_ptr(), b_rs, b_cs, &mut buffer) };
                assert!(constant.packed.is_some() || kernels().is_none());
                let mut got = vec![0.0; m * n];
                // SAFETY: as above, and `constant` was packed from `b` for this shape.
                unsafe {
                    let (dst, a_ptr, b_ptr) = (got.as_mut_ptr(), a.as_ptr(), b.as_ptr());
                    sgemm_constant_rhs(
                        (m, n, k),
                        dst,
                        a_ptr,
                        k as isize,
                        1,
                        b_ptr,
                        b_rs,
                        b_cs,
                        constant,
                    )
                };
                assert!(
                    got.iter()
                        .zip(&expected)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}×{n}×{k} transposed b {transposed_b}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn products_match_a_reference_for_every_transpose() {
        for &(m, n, k) in SHAPES {
            let mut gemm = planned(m, n, k, 1);
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                product(&mut gemm, m, n, k, ta, tb);
            }
        }
    }

    /// More threads than cores: nobody spins for the next product (a spinning thread would
    /// hold the core a working one needs), and the products keep their bits.
    #[test]
    fn more_threads_than_cores_wait_without_spinning() {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let (m, n, k) = (256, 256, 64);
        let one = product(&mut planned(m, n, k, 1), m, n, k, false, false);
        let mut many = planned(m, n, k, cores + 3);
        assert!(!many.spin);
        assert!(
            many.workers
                .iter()
                .all(|w| !w.slot.spin.load(Ordering::Acquire))
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&product(&mut many, m, n, k, false, false)), bits(&one));
        many.set_threads(1);
        assert!(many.spin);
    }

    #[test]
    fn two_threads_give_bit_identical_products() {
        for &(m, n, k) in &[
            (256, 256, 64),
            (96, 300, 100),
            (300, 96, 100),
            (64, 784, 256),
        ] {
            assert!(
                m * n * k >= PARALLEL_MIN_MACS,
                "{m}×{n}×{k} would not be split"
            );
            for (ta, tb) in [(false, false), (true, false), (false, true)] {
                let one = product(&mut planned(m, n, k, 1), m, n, k, ta, tb);
                let two = product(&mut planned(m, n, k, 2), m, n, k, ta, tb);
                assert!(
                    one.iter()
                        .zip(&two)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}×{n}×{k} ta={ta} tb={tb}: 1 and 2 threads differ"
                );
            }
        }
    }

    /// `values` copied to a 32-byte boundary plus `shift` floats.
    fn placed(values: &[f32], shift: usize) -> (Vec<f32>, usize) {
        let mut buf = vec![0.0; values.len() + 16];
        let start = buf.as_ptr().align_offset(32) + shift;
        buf[start..start + values.len()].copy_from_slice(values);
        (buf, start)
    }

    #[test]
    fn workers_sent_to_rest_wake_for_the_next_product() {
        let (m, n, k) = (64, 256, 300);
        assert!(m * n * k >= PARALLEL_MIN_MACS);
        let a = values(m * k, 3);
        let b = values(k * n, 4);
        let mut gemm = planned(m, n, k, 2);
        let mut first = vec![0.0; m * n];
        gemm.matmul(m, n, k, &a, false, &b, false, &mut first);
        gemm.rest();
        // Long enough for a worker to see the flag and park.
        thread::sleep(std::time::Duration::from_millis(20));
        let mut again = vec![f32::NAN; m * n];
        gemm.matmul(m, n, k, &a, false, &b, false, &mut again);
        assert_eq!(first, again);
    }

    #[test]
    fn a_left_operand_with_a_wide_stride_is_packed() {
        let aligned = std::ptr::without_provenance(64);
        // 64 depths 256 floats apart span 64 KiB: packed. Half the depths fit in L1: in place.
        assert!(!direct_lhs(256, 64, aligned, 1, 256));
        assert!(direct_lhs(256, 32, aligned, 1, 256));
        // `wide`'s weights: 1024 floats (4 KiB) between depths.
        assert!(!direct_lhs(1024, depth_block(1024), aligned, 1, 1024));
    }

    #[test]
    fn a_left_operand_read_in_place_gives_the_packed_result() {
        // C = A·B with B's rows contiguous: B is the kernels' left operand. Aligned, it is read
        // in place; one float off, it is packed. Same kernels, same order: identical bits.
        for &(m, n, k) in &[(32, 64, 32), (33, 16, 7), (5, 48, 160), (300, 96, 80)] {
            assert_eq!(
                direct_lhs(n, k, std::ptr::without_provenance(64), 1, n as isize),
                n.is_multiple_of(MR)
            );
            let a = values(m * k, 5);
            let b = values(k * n, 6);
            let mut gemm = planned(m, n, k, 1);
            let mut results = Vec::new();
            for shift in [0, 1] {
                let (buf, start) = placed(&b, shift);
                let b = &buf[start..start + k * n];
                assert_eq!(
                    direct_lhs(n, k, b.as_ptr(), 1, n as isize),
                    shift == 0 && n.is_multiple_of(MR)
                );
                let mut dst = vec![f32::NAN; m * n];
                gemm.matmul(m, n, k, &a, false, b, false, &mut dst);
                let want = reference(m, n, k, &a, false, b, false);
                for (&got, &want) in dst.iter().zip(&want) {
                    assert!(
                        (got as f64 - want).abs() <= 1e-4 * (k as f64).sqrt() * (1.0 + want.abs())
                    );
                }
                results.push(dst);
            }
            assert!(
                results[0]
                    .iter()
                    .zip(&results[1])
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{m}×{n}×{k}: in place and packed differ"
            );
        }
    }

    #[test]
    fn narrow_outputs_are_computed_untransposed() {
        // The 10-class layers of the seed and mnist workloads.
        assert!(!transposes_output(32, 10, 64));
        assert!(!transposes_output(64, 10, 32));
        assert!(!transposes_output(64, 10, 256));
        assert!(!transposes_output(256, 10, 64));
        // `wide`'s: its 256×1024 activations cost more to pack than the padding.
        assert!(transposes_output(256, 10, 1024));
        assert!(transposes_output(1024, 10, 256));
        // Square-ish and wide outputs, and small ones where neither saves work.
        assert!(transposes_output(32, 64, 32));
        assert!(transposes_output(64, 64, 32));
        assert!(transposes_output(17, 13, 9));
        assert!(transposes_output(1, 1, 1));
        assert!(transposes_output(7, 2100, 5));
        assert_eq!(sides(32, 10, transposes_output(32, 10, 64)), (32, 10));
        assert_eq!(sides(32, 64, transposes_output(32, 64, 64)), (64, 32));
    }

    #[test]
    fn a_ragged_batch_that_prefers_the_other_orientation_fits_the_planned_one() {
        // Planned at `plan` rows, each product is computed untransposed; a ragged batch of
        // `rows` would prefer it transposed, which needs more scratch than was planned, so it
        // stays untransposed (no library call, no allocation) and gives the same bits as the
        // transposed computation in a roomier `Gemm`.
        for &(plan, rows, n, k) in &[
            (10, 9, 4, 1),
            (10, 9, 4, 32),
            (16, 9, 5, 32),
            (23, 19, 6, 32),
        ] {
            assert!(!transposes_output(plan, n, k) && transposes_output(rows, n, k));
            let planned_len = scratch_len(plan, n, k);
            assert!(
                scratch_len(n, rows, k) > planned_len && scratch_len(rows, n, k) <= planned_len
            );
            let a = values(rows * k, 7);
            let b = values(k * n, 8);
            let mut tight = vec![f32::NAN; rows * n];
            let mut roomy = vec![f32::NAN; rows * n];
            planned(plan, n, k, 1).matmul(rows, n, k, &a, false, &b, false, &mut tight);
            Gemm::for_products([(rows, n, k), (64, 64, 64)], 1)
                .matmul(rows, n, k, &a, false, &b, false, &mut roomy);
            assert!(
                tight
                    .iter()
                    .zip(&roomy)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{rows}×{n}×{k}: the two orientations differ"
            );
        }
    }

    #[test]
    fn a_right_operand_that_fits_in_l1_is_read_in_place() {
        // `seed`'s 64×64×32 weight gradient: 32 depths of 64 columns, 8 KiB.
        assert!(!pack_rhs(64, 64, 32, 64));
        // `mnist`'s 256×256×64 one (64 KiB) and `wide`'s products are packed as before.
        assert!(pack_rhs(256, 256, 64, 256));
        assert!(pack_rhs(1024, 256, 512, 1024));
        assert!(
            !pack_rhs(1024, 256, 512, 1),
            "contiguous depths, few row panels"
        );
    }

    #[test]
    fn depth_blocks_depend_on_k_alone_and_stay_within_kc() {
        assert_eq!(depth_block(0), 0);
        assert_eq!(depth_block(100), 100);
        assert_eq!(depth_block(512), 512);
        assert_eq!(depth_block(784), 392);
        assert_eq!(depth_block(1100), 367);
    }
}
