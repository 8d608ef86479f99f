//! Loop specs: each kernel's loop nest described without emitting it — its extent (with the
//! batch dimension symbolic), the buffers it reads and writes with their strides, and the flat
//! runs the optimizer update collapses into. A backend turns them into loops.

use std::collections::HashMap;

use super::memory::{Buf, MemoryPlan};
use super::schedule::{Schedule, UpdateGroup};
use crate::codegen::CodegenError;
use crate::ir::graph::Slot;
use crate::ir::{Dim, ElementwiseKind, Graph, LeafKind, Op, OpKind, ReduceKind, ValueId};

fn err(message: impl Into<String>) -> CodegenError {
    CodegenError {
        message: message.into(),
    }
}

/// A size or stride: `fixed * batch^batch_pow`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Extent {
    pub(crate) fixed: usize,
    pub(crate) batch_pow: u32,
}

impl Extent {
    pub(crate) const ZERO: Extent = Extent {
        fixed: 0,
        batch_pow: 0,
    };
    pub(crate) const ONE: Extent = Extent {
        fixed: 1,
        batch_pow: 0,
    };
    pub(crate) fn of(d: Dim) -> Extent {
        match d {
            Dim::Batch => Extent {
                fixed: 1,
                batch_pow: 1,
            },
            Dim::Fixed(n) => Extent {
                fixed: n,
                batch_pow: 0,
            },
        }
    }
    pub(crate) fn mul(self, o: Extent) -> Extent {
        Extent {
            fixed: self.fixed * o.fixed,
            batch_pow: self.batch_pow + o.batch_pow,
        }
    }
    pub(crate) fn product(dims: &[Dim]) -> Extent {
        dims.iter().fold(Extent::ONE, |a, &d| a.mul(Extent::of(d)))
    }
}

/// How a loop reads or writes one buffer: its base and a stride per loop dimension.
#[derive(Clone, Debug)]
pub(crate) struct Access {
    pub(crate) buf: Buf,
    pub(crate) strides: Vec<Extent>,
}

/// Strides that read `shape` broadcast (NumPy rules) over a loop of `dims`.
pub(crate) fn broadcast_strides(shape: &[Dim], dims: &[Dim]) -> Vec<Extent> {
    let r = dims.len();
    let lead = r - shape.len();
    (0..r)
        .map(|d| {
            if d < lead {
                return Extent::ZERO;
            }
            let k = d - lead;
            if shape[k] == Dim::Fixed(1) && dims[d] != Dim::Fixed(1) {
                Extent::ZERO
            } else {
                Extent::product(&shape[k + 1..])
            }
        })
        .collect()
}

/// One loop nest: elementwise stores and/or a reduction.
#[derive(Clone, Debug, Default)]
pub struct LoopSpec {
    pub(crate) dims: Vec<Dim>,
    pub(crate) stores: Vec<(ValueId, Access)>,
    pub(crate) reduce: Option<(ReduceKind, ValueId, Access)>,
    pub(crate) leaves: Vec<(ValueId, Access)>,
    pub(crate) labels: Vec<(ValueId, Access)>,
    /// Dropout nodes and the flat index of their element at each loop position (an access with
    /// base 0 whose offset is that index).
    pub(crate) indices: Vec<(ValueId, Access)>,
}

/// The graph, schedule and memory plan: everything needed to describe loops (not emit them).
#[derive(Clone, Copy)]
pub struct Plan<'g> {
    pub graph: &'g Graph,
    pub sched: &'g Schedule,
    pub mem: &'g MemoryPlan,
}

impl Plan<'_> {
    // ── Specs ──────────────────────────────────────────────────────────────────────────────

    pub fn home(&self, v: ValueId) -> Result<Buf, CodegenError> {
        self.mem
            .home
            .get(&v)
            .copied()
            .ok_or_else(|| err(format!("%{} has no buffer", v.0)))
    }

    pub(crate) fn access(&self, v: ValueId, dims: &[Dim]) -> Result<Access, CodegenError> {
        Ok(Access {
            buf: self.home(v)?,
            strides: broadcast_strides(self.graph.shape(v).dims(), dims),
        })
    }

    /// Collects the buffers a loop reads: values with a buffer not in `computed` are loaded.
    pub(crate) fn spec(
        &self,
        dims: Vec<Dim>,
        stores: Vec<(ValueId, Access)>,
        reduce: Option<(ReduceKind, ValueId, Access)>,
        computed: &[ValueId],
    ) -> Result<LoopSpec, CodegenError> {
        let mut spec = LoopSpec {
            dims,
            stores,
            reduce,
            ..LoopSpec::default()
        };
        let mut seen = Vec::new();
        let mut stack: Vec<ValueId> = spec.stores.iter().map(|s| s.0).collect();
        stack.extend(spec.reduce.iter().map(|r| r.1));
        while let Some(v) = stack.pop() {
            if seen.contains(&v) {
                continue;
            }
            seen.push(v);
            let node = self.graph.node(v);
            let loaded = self.mem.home.contains_key(&v) && !computed.contains(&v);
            match node.op.kind() {
                OpKind::Leaf(LeafKind::Scalar) => {}
                _ if loaded => {
                    let access = self.access(v, &spec.dims)?;
                    spec.leaves.push((v, access));
                }
                OpKind::Elementwise(ElementwiseKind::Map | ElementwiseKind::Broadcast) => {
                    stack.extend(node.inputs.iter().copied())
                }
                // The loop passes the element's index in the op's own shape.
                OpKind::Elementwise(ElementwiseKind::Indexed) => {
                    let access = Access {
                        buf: Buf::F32(0),
                        strides: broadcast_strides(node.ty.shape.dims(), &spec.dims),
                    };
                    spec.indices.push((v, access));
                    stack.extend(node.inputs.iter().copied());
                }
                OpKind::Elementwise(ElementwiseKind::Labels) => {
                    let label = node.inputs[0];
                    let mut shape = self.graph.shape(label).0.clone();
                    shape.push(Dim::Fixed(1));
                    spec.labels.push((
                        v,
                        Access {
                            buf: self.home(label)?,
                            strides: broadcast_strides(&shape, &spec.dims),
                        },
                    ));
                }
                OpKind::Leaf(LeafKind::Buffer) | OpKind::Reduction | OpKind::Structured(_) => {
                    return Err(err(format!(
                        "%{}: {} is not computed by any kernel",
                        v.0,
                        node.op.name()
                    )));
                }
            }
        }
        Ok(spec)
    }

    /// Update loops: consecutive per-parameter loops of identical structure over consecutive
    /// memory collapse into one flat loop.
    pub fn update_runs(&self) -> Result<Vec<LoopSpec>, CodegenError> {
        let mut runs: Vec<(LoopSpec, String, usize)> = Vec::new(); // (spec, signature, numel)
        for group in &self.sched.groups {
            let spec = self.group_spec(group)?;
            let numel = group.shape.numel(1);
            let flat = !group.shape.has_batch();
            let sig = self.signature(group, &spec);
            if let Some((last, last_sig, last_numel)) = runs.last_mut()
                && flat
                && *last_sig == sig
                && let Some(merged) = merge(last, *last_numel, &spec, numel)
            {
                *last = merged;
                *last_numel += numel;
                continue;
            }
            let spec = if flat { flatten(&spec, numel) } else { None }.unwrap_or(spec);
            runs.push((spec, sig, numel));
        }
        Ok(runs.into_iter().map(|r| r.0).collect())
    }

    pub(crate) fn group_spec(&self, group: &UpdateGroup) -> Result<LoopSpec, CodegenError> {
        let dims = group.shape.0.clone();
        let stores = group
            .outputs
            .iter()
            .map(|&(v, t)| {
                let base = match t {
                    Slot::Param(p) => self.mem.params[p],
                    Slot::State(s) => self.mem.states[s],
                };
                let access = Access {
                    buf: Buf::F32(base),
                    strides: broadcast_strides(&dims, &dims),
                };
                (v, access)
            })
            .collect();
        self.spec(dims, stores, None, &[])
    }

    /// The structure of an update loop, with leaves named by position (not by buffer).
    pub(crate) fn signature(&self, group: &UpdateGroup, spec: &LoopSpec) -> String {
        let mut ids: HashMap<ValueId, usize> = HashMap::new();
        let mut out = String::new();
        fn walk(
            e: &Plan,
            v: ValueId,
            spec: &LoopSpec,
            ids: &mut HashMap<ValueId, usize>,
            out: &mut String,
        ) -> usize {
            if let Some(&i) = ids.get(&v) {
                return i;
            }
            let node = e.graph.node(v);
            let text = if let Some((_, a)) = spec.leaves.iter().find(|l| l.0 == v) {
                // Leaves are compared by how they are read, not by shape.
                if a.strides.iter().all(|s| *s == Extent::ZERO) {
                    "scalar".to_string()
                } else if row_major(a, spec) {
                    "full".to_string()
                } else {
                    format!("leaf{:?}", a.strides)
                }
            } else {
                match &node.op {
                    Op::Const { value } => format!("k{}", value.to_bits()),
                    Op::Broadcast => {
                        let i = walk(e, node.inputs[0], spec, ids, out);
                        ids.insert(v, i);
                        return i;
                    }
                    op => {
                        let args: Vec<String> = node
                            .inputs
                            .iter()
                            .map(|&x| walk(e, x, spec, ids, out).to_string())
                            .collect();
                        // Attributes too: loops merge only if they compute the same thing.
                        format!("{}{}({})", op.name(), op.attributes(), args.join(","))
                    }
                }
            };
            let i = ids.len();
            ids.insert(v, i);
            out.push_str(&format!("{i}={text};"));
            i
        }
        for (v, t) in &group.outputs {
            let i = walk(self, *v, spec, &mut ids, &mut out);
            let kind = matches!(t, Slot::Param(_));
            out.push_str(&format!("out({i},{kind});"));
        }
        out
    }
}

impl LoopSpec {
    /// A short description for `kiln run --profile`: the loop's extent and what it writes.
    pub fn profile_label(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
        format!(
            "loop [{}] reads {} buffers, writes {}",
            dims.join(", "),
            self.leaves.len(),
            self.stores.len()
        )
    }

    /// One line for `kiln dump --stage kernels`.
    pub fn describe(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
        let stores: Vec<String> = self
            .stores
            .iter()
            .map(|(v, a)| match a.buf {
                Buf::F32(o) | Buf::I32(o) => format!("%{}@{o}", v.0),
            })
            .collect();
        format!(
            "loop [{}] reads {} buffers, writes {}",
            dims.join(", "),
            self.leaves.len(),
            stores.join(" ")
        )
    }
}

/// A loop over a fixed-shape group as one flat dimension (leaves contiguous or scalar).
pub(crate) fn flatten(spec: &LoopSpec, numel: usize) -> Option<LoopSpec> {
    let flat = |a: &Access, full: bool| Access {
        buf: a.buf,
        strides: vec![if full { Extent::ONE } else { Extent::ZERO }],
    };
    let mut out = LoopSpec {
        dims: vec![Dim::Fixed(numel)],
        ..LoopSpec::default()
    };
    for (v, a) in &spec.leaves {
        let zero = a.strides.iter().all(|s| *s == Extent::ZERO);
        let full = row_major(a, spec);
        if !zero && !full {
            return None;
        }
        out.leaves.push((*v, flat(a, full)));
    }
    for (v, a) in &spec.stores {
        if !row_major(a, spec) {
            return None;
        }
        out.stores.push((*v, flat(a, true)));
    }
    if !spec.labels.is_empty() || !spec.indices.is_empty() || spec.reduce.is_some() {
        return None;
    }
    Some(out)
}

/// Whether an access walks the loop's elements in row-major order.
pub(crate) fn row_major(a: &Access, spec: &LoopSpec) -> bool {
    let mut expect = Extent::ONE;
    for (d, s) in a.strides.iter().enumerate().rev() {
        if spec.dims[d] != Dim::Fixed(1) && *s != expect {
            return false;
        }
        expect = expect.mul(Extent::of(spec.dims[d]));
    }
    true
}

/// Appends `next` (flat after `flatten`) to the flat run `run` of `run_numel` elements, when
/// every buffer continues exactly where the run's ends and every scalar is the same.
pub(crate) fn merge(
    run: &LoopSpec,
    run_numel: usize,
    next: &LoopSpec,
    numel: usize,
) -> Option<LoopSpec> {
    let next = flatten(next, numel)?;
    if run.leaves.len() != next.leaves.len() || run.stores.len() != next.stores.len() {
        return None;
    }
    let pairs = run
        .leaves
        .iter()
        .zip(&next.leaves)
        .chain(run.stores.iter().zip(&next.stores));
    for ((_, a), (_, b)) in pairs {
        if a.strides != b.strides {
            return None;
        }
        let (Buf::F32(x), Buf::F32(y)) = (a.buf, b.buf) else {
            return None;
        };
        let ok = if a.strides[0] == Extent::ZERO {
            x == y
        } else {
            x + run_numel == y
        };
        if !ok {
            return None;
        }
    }
    let mut merged = run.clone();
    merged.dims = vec![Dim::Fixed(run_numel + numel)];
    Some(merged)
}
