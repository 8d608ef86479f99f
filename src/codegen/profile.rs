//! `kiln run --profile`: where a step's time goes, measured.
//!
//! A profiled step is a second compilation of the same graph, with a call to
//! `kiln_profile_mark(site)` after each kernel (and after each optimizer-update loop). The mark
//! adds the time since the previous mark to that site's total. The ordinary step is compiled
//! without these calls, so profiling costs nothing unless asked for.
//!
//! The clock lives in a thread-local, installed by `CompiledStep::run` for the call into native
//! code (the mark's signature is fixed by the JIT'd call, so its state cannot be an argument,
//! as with `gemm::kiln_sgemm`). Installing moves the totals' vector in and out, so a profiled
//! run allocates nothing either.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::kernel::loops::Plan;
use super::kernel::schedule::{Kernel, Schedule};
use super::{CodegenError, MemoryPlan};
use crate::diag::Span;
use crate::ir::{Graph, Op, ValueId};

/// Which part of the training step a kernel belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Computes a value the graph's outputs (loss, scores) depend on.
    Forward,
    /// Computes a gradient (or a value only gradients need).
    Backward,
    /// Computes the new parameters and optimizer state from the gradients (and the step's
    /// scalars, such as Adam's bias correction).
    Update,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Update => "update",
        }
    }
}

/// One timed site of a profiled step: a fused kernel or an update loop.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelInfo {
    /// What the kernel computes, e.g. `matmul+epilogue [B, 64] = [B, 32]·[32, 64]`.
    pub label: String,
    pub phase: Phase,
    /// The `.model` source the kernel's result comes from (a layer, the loss), when known.
    pub span: Option<Span>,
}

/// Totals accumulated by the marks of the step running on this thread.
struct Clock {
    last: Instant,
    totals: Vec<Duration>,
}

thread_local! {
    static CLOCK: RefCell<Option<Clock>> = const { RefCell::new(None) };
}

/// Starts timing a run: the marks add to `totals` until the guard is dropped, which hands the
/// totals back.
pub(crate) fn install(totals: &mut Vec<Duration>) -> Installed<'_> {
    let clock = Clock {
        last: Instant::now(),
        totals: std::mem::take(totals),
    };
    CLOCK.with_borrow_mut(|c| *c = Some(clock));
    Installed { totals }
}

pub(crate) struct Installed<'a> {
    totals: &'a mut Vec<Duration>,
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        if let Some(clock) = CLOCK.with_borrow_mut(Option::take) {
            *self.totals = clock.totals;
        }
    }
}

/// Called by a profiled step after kernel `site`: charges it the time since the last mark (or
/// since the run started). The mark's own bookkeeping (two clock reads' worth) is charged to the
/// next kernel; the profile reports the total overhead against the uninstrumented step.
pub(crate) extern "C" fn kiln_profile_mark(site: i64) {
    let now = Instant::now();
    CLOCK.with_borrow_mut(|clock| {
        if let Some(clock) = clock {
            if let Some(total) = usize::try_from(site)
                .ok()
                .and_then(|s| clock.totals.get_mut(s))
            {
                *total += now - clock.last;
            }
            clock.last = now;
        }
    });
}

/// The sites a profiled step marks, in the order `Emitter::emit_all` marks them: every kernel
/// that emits code, then every update loop.
pub(crate) fn sites(
    graph: &Graph,
    sched: &Schedule,
    mem: &MemoryPlan,
) -> Result<Vec<KernelInfo>, CodegenError> {
    let forward = ancestors(graph, graph.outputs.iter().map(|&(_, v)| v));
    let backward = ancestors(graph, graph.gradients.iter().map(|g| g.value));
    let phase = |v: ValueId| {
        if forward[v.index()] {
            Phase::Forward
        } else if backward[v.index()] {
            Phase::Backward
        } else {
            Phase::Update
        }
    };
    let shape = |v: ValueId| graph.shape(v).to_string();
    let product = |v: ValueId| {
        let node = graph.node(v);
        let (ta, tb) = match node.op {
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => (transpose_a, transpose_b),
            Op::Contract => (true, false),
            _ => (false, false),
        };
        let t = |transposed: bool| if transposed { "ᵀ" } else { "" };
        match node.inputs.as_slice() {
            [a, b] => format!(
                "{} = {}{}·{}{}",
                shape(v),
                shape(*a),
                t(ta),
                shape(*b),
                t(tb)
            ),
            _ => shape(v),
        }
    };
    let ops = |n: usize| {
        if n == 1 {
            "1 op".to_string()
        } else {
            format!("{n} ops")
        }
    };
    let mut out = Vec::new();
    for kernel in &sched.kernels {
        let (label, root) = match kernel {
            Kernel::Elementwise {
                root,
                matmul: Some(m),
                ..
            } => (
                format!("matmul+{} {}", graph.node(*root).op.name(), product(*m)),
                *root,
            ),
            Kernel::Elementwise { root, nodes, .. } => (
                format!("elementwise ({}) {}", ops(nodes.len()), shape(*root)),
                *root,
            ),
            Kernel::MatMul { node } => (format!("matmul {}", product(*node)), *node),
            Kernel::Reduce { node, nodes } => (
                format!("reduce ({}) {}", ops(nodes.len()), shape(*node)),
                *node,
            ),
            Kernel::Softmax { node } => (
                format!("{} {}", graph.node(*node).op.name(), shape(*node)),
                *node,
            ),
            Kernel::Copy { node }
            | Kernel::Concat { node }
            | Kernel::Rows { node }
            | Kernel::Window { node }
            | Kernel::Scan { node } => (
                format!("{} {}", graph.node(*node).op.name(), shape(*node)),
                *node,
            ),
            Kernel::Update { .. } => continue,
        };
        out.push(KernelInfo {
            label,
            phase: phase(root),
            span: graph.node(root).span,
        });
    }
    let plan = Plan { graph, sched, mem };
    for run in plan.update_runs()? {
        out.push(KernelInfo {
            label: format!("update {}", run.profile_label()),
            phase: Phase::Update,
            span: None,
        });
    }
    Ok(out)
}

/// The values `roots` depend on (themselves included). Node order is topological, so one
/// sweep from the last node finds them: from the outputs (loss, scores), the forward pass; from
/// the gradients, what backward needs.
fn ancestors(graph: &Graph, roots: impl Iterator<Item = ValueId>) -> Vec<bool> {
    let mut needed = vec![false; graph.nodes.len()];
    for v in roots {
        needed[v.index()] = true;
    }
    for i in (0..graph.nodes.len()).rev() {
        if needed[i] {
            for input in &graph.nodes[i].inputs {
                needed[input.index()] = true;
            }
        }
    }
    needed
}
