//! Memory planning: every stored value gets a fixed offset in one f32 arena (or the i32 arena
//! for integer inputs), sized for `max_batch` once at compile time. A `[B, N]` buffer keeps
//! row `i` at `i * N` for every batch size, so a smaller batch reuses the same offsets.
//!
//! Layout: parameters back to back, then the gradients at the same relative offsets, then one
//! region per optimizer-state role (e.g. Adam's `m`, `v`) again at the parameters' offsets. Equal
//! per-parameter update loops therefore read and write one flat range and collapse into a single
//! loop. Temporaries follow, 64-byte aligned; a temporary's space is reused once its last reader
//! has run.

use std::collections::{HashMap, HashSet};

use super::products::{self, Geometry, MatmulPolicy};
use super::schedule::{Kernel, Schedule};
use crate::ir::graph::Slot;
use crate::ir::{DType, ElementwiseKind, Graph, Op, OpKind, StructuredKind, ValueId};

/// Floats per alignment unit (64 bytes).
pub const ALIGN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    F32(usize),
    I32(usize),
}

#[derive(Clone, Debug)]
pub struct MemoryPlan {
    pub f32_len: usize,
    pub i32_len: usize,
    /// The buffer of every stored value (leaves included).
    pub home: HashMap<ValueId, Buf>,
    pub params: Vec<usize>,
    pub states: Vec<usize>,
    pub inputs: Vec<Buf>,
    /// Matrix products emitted as Cranelift kernels (the rest call `gemm`).
    pub emitted_matmuls: HashSet<ValueId>,
    /// Scratch shared by the kernels that need it (they run one at a time): the emitted
    /// products' transposed right operands, and the scans' carried state.
    pub scratch: Option<usize>,
}

fn is_broadcast(op: &Op) -> bool {
    op.kind() == OpKind::Elementwise(ElementwiseKind::Broadcast)
}

fn align(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

pub fn plan(graph: &Graph, sched: &Schedule, max_batch: usize, policy: MatmulPolicy) -> MemoryPlan {
    let numel = |v: ValueId| graph.shape(v).numel(max_batch);
    let mut top = 0;

    let mut params = Vec::new();
    for p in &graph.params {
        params.push(top);
        top += p.shape.numel(1);
    }
    let params_len = top;
    let grads_base = align(top);
    top = grads_base + params_len;

    // State roles from the update loops: role k of parameter p lives at family_k + offset(p).
    let mut states: Vec<Option<usize>> = vec![None; graph.states.len()];
    let mut families = 0;
    let mut family_of: Vec<(usize, usize, usize)> = Vec::new(); // (state, role, param)
    for group in &sched.groups {
        let Some(p) = group.param() else { continue };
        let roles = state_roles(graph, group.outputs.iter().map(|o| o.0), &group.nodes);
        for (k, s) in roles.into_iter().enumerate() {
            let fits = graph.states[s].shape.numel(1) == graph.params[p].shape.numel(1)
                && !graph.states[s].shape.has_batch();
            if fits && !family_of.iter().any(|f| f.0 == s) {
                family_of.push((s, k, p));
                families = families.max(k + 1);
            }
        }
    }
    let family_base: Vec<usize> = (0..families)
        .map(|_| {
            let base = align(top);
            top = base + params_len;
            base
        })
        .collect();
    for (s, k, p) in family_of {
        states[s] = Some(family_base[k] + params[p]);
    }
    let states: Vec<usize> = states
        .into_iter()
        .enumerate()
        .map(|(s, at)| {
            at.unwrap_or_else(|| {
                let base = align(top);
                top = base + graph.states[s].shape.numel(max_batch);
                base
            })
        })
        .collect();

    let mut itop = 0;
    let inputs: Vec<Buf> = graph
        .inputs
        .iter()
        .map(|i| match i.ty.dtype {
            DType::F32 => {
                let base = align(top);
                top = base + i.ty.shape.numel(max_batch);
                Buf::F32(base)
            }
            DType::I32 => {
                let base = align(itop);
                itop = base + i.ty.shape.numel(max_batch);
                Buf::I32(base)
            }
        })
        .collect();

    let mut home = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        match node.op {
            Op::Input { index } => {
                home.insert(v, inputs[index]);
            }
            Op::Param { index } => {
                home.insert(v, Buf::F32(params[index]));
            }
            Op::State { index } => {
                home.insert(v, Buf::F32(states[index]));
            }
            _ => {}
        }
    }
    // Gradients are written straight into the gradient region.
    for g in &graph.gradients {
        let v = g.value;
        let p = &graph.params[g.param];
        if sched.stored[v.index()]
            && !home.contains_key(&v)
            && !graph.shape(v).has_batch()
            && numel(v) == p.shape.numel(1)
        {
            home.insert(v, Buf::F32(grads_base + params[g.param]));
        }
    }

    // A reshape (a copy that keeps the element order) shares its input's buffer (same elements, same order) unless it already has a
    // home of its own (a gradient) or the input is a parameter or state, which the update
    // overwrites behind the alias's back. The shared buffer lives as long as its last reader
    // through any alias.
    let (def, mut last) = lifetimes(graph, sched);
    let mut alias: HashMap<ValueId, ValueId> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        let same_order =
            node.op.kind() == OpKind::Structured(StructuredKind::Copy { same_order: true });
        if !same_order || !sched.stored[i] || home.contains_key(&v) {
            continue;
        }
        let input = node.inputs[0];
        let source = alias.get(&input).copied().unwrap_or(input);
        let shareable = sched.stored[source.index()]
            && !matches!(graph.node(source).op, Op::Param { .. } | Op::State { .. });
        if shareable {
            alias.insert(v, source);
            last[source.index()] = last[source.index()].max(last[i]);
        }
    }

    // Temporaries: first-fit reuse of space whose last reader has run.
    let temps_base = align(top);
    let mut free: Vec<(usize, usize)> = Vec::new(); // (offset, len) free blocks
    let mut busy: Vec<(usize, usize, usize)> = Vec::new(); // (until kernel, offset, len)
    let mut temps_top = temps_base;
    let mut order: Vec<ValueId> = (0..graph.nodes.len())
        .map(|i| ValueId(i as u32))
        .filter(|v| {
            sched.stored[v.index()]
                && !home.contains_key(v)
                && !sched.epilogue_of.contains_key(v)
                && !alias.contains_key(v)
        })
        .collect();
    order.sort_by_key(|v| (def[v.index()], v.index()));
    for v in order {
        let at = def[v.index()];
        // Space freed strictly before this kernel may be reused (a kernel's inputs stay
        // intact while it writes).
        busy.retain(|&(until, off, len)| {
            if until < at {
                free.push((off, len));
                false
            } else {
                true
            }
        });
        let len = align(numel(v).max(1));
        let off = match free.iter().position(|&(_, l)| l >= len) {
            Some(k) => {
                let (off, l) = free.remove(k);
                if l > len {
                    free.push((off + len, l - len));
                }
                off
            }
            None => {
                let off = temps_top;
                temps_top += len;
                off
            }
        };
        // Values leaving the step stay alive to the end.
        let until = last[v.index()];
        busy.push((until, off, len));
        home.insert(v, Buf::F32(off));
    }
    for (m, root) in &sched.epilogue_of {
        if let Some(&b) = home.get(root) {
            home.insert(*m, b);
        }
    }
    for (v, source) in &alias {
        if let Some(&b) = home.get(source) {
            home.insert(*v, b);
        }
    }
    // Matrix products: which run as Cranelift kernels, and their packing scratch at the end.
    let emitted_matmuls: HashSet<ValueId> = (0..graph.nodes.len())
        .map(|i| ValueId(i as u32))
        .filter(|&v| products::emitted(graph, v, max_batch, policy))
        .collect();
    let pack_len = emitted_matmuls
        .iter()
        .filter_map(|&v| Geometry::of(graph, v))
        .map(|g| g.pack_len(max_batch))
        .max()
        .unwrap_or(0);
    let scan_len = graph
        .nodes
        .iter()
        .filter_map(|node| match &node.op {
            Op::Recurrence { cell } | Op::RecurrenceGrad { cell } => {
                Some(crate::codegen::recurrence::scratch_len(cell, max_batch))
            }
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let scratch_len = pack_len.max(scan_len);
    let end = align(temps_top.max(top));
    let scratch = (scratch_len > 0).then_some(end);
    MemoryPlan {
        f32_len: align(end + scratch_len) + ALIGN,
        i32_len: itop.max(1),
        home,
        params,
        states,
        inputs,
        emitted_matmuls,
        scratch,
    }
}

/// States in the canonical order they are met from an update loop's outputs.
pub fn state_roles(
    graph: &Graph,
    outputs: impl Iterator<Item = ValueId>,
    local: &[ValueId],
) -> Vec<usize> {
    let mut roles = Vec::new();
    let mut seen = Vec::new();
    let mut push = |s: usize, roles: &mut Vec<usize>| {
        if !roles.contains(&s) {
            roles.push(s);
        }
    };
    fn walk(
        graph: &Graph,
        v: ValueId,
        local: &[ValueId],
        seen: &mut Vec<ValueId>,
        roles: &mut Vec<usize>,
        push: &mut dyn FnMut(usize, &mut Vec<usize>),
    ) {
        if seen.contains(&v) {
            return;
        }
        seen.push(v);
        for u in graph.updates.iter().filter(|u| u.value == v) {
            if let Slot::State(s) = u.target {
                push(s, roles);
            }
        }
        let node = graph.node(v);
        if let Op::State { index } = node.op {
            push(index, roles);
        }
        if local.contains(&v) || is_broadcast(&node.op) {
            for &inp in &node.inputs {
                walk(graph, inp, local, seen, roles, push);
            }
        }
    }
    for v in outputs {
        walk(graph, v, local, &mut seen, &mut roles, &mut push);
    }
    roles
}

/// For every value: the kernel that writes it and the last kernel that reads it (outputs and
/// gradients: the end of the step).
fn lifetimes(graph: &Graph, sched: &Schedule) -> (Vec<usize>, Vec<usize>) {
    let n = graph.nodes.len();
    let end = usize::MAX;
    let mut def = vec![0; n];
    let mut last = vec![0; n];
    let mark_reads = |k: usize, reads: &[ValueId], last: &mut Vec<usize>| {
        for r in reads {
            last[r.index()] = last[r.index()].max(k);
        }
    };
    for (k, kernel) in sched.kernels.iter().enumerate() {
        let (writes, computed): (Vec<ValueId>, Vec<ValueId>) = match kernel {
            Kernel::Elementwise {
                root,
                matmul,
                nodes,
            } => {
                let mut c = nodes.clone();
                c.extend(matmul.iter().copied());
                (vec![*root], c)
            }
            Kernel::MatMul { node }
            | Kernel::Softmax { node }
            | Kernel::Copy { node }
            | Kernel::Concat { node }
            | Kernel::Rows { node }
            | Kernel::Window { node }
            | Kernel::Scan { node } => (vec![*node], vec![*node]),
            Kernel::Reduce { node, nodes } => (vec![*node], nodes.clone()),
            Kernel::Update { group } => {
                let g = &sched.groups[*group];
                (Vec::new(), g.nodes.clone())
            }
        };
        for w in &writes {
            def[w.index()] = k;
        }
        let mut reads: Vec<ValueId> = computed
            .iter()
            .flat_map(|c| graph.node(*c).inputs.iter().copied())
            .collect();
        if let Kernel::Update { group } = kernel {
            reads.extend(sched.groups[*group].outputs.iter().map(|o| o.0));
        }
        // Reads through broadcasts reach the broadcast's source.
        let mut i = 0;
        while i < reads.len() {
            let r = reads[i];
            if is_broadcast(&graph.node(r).op) && !sched.stored[r.index()] {
                reads.extend(graph.node(r).inputs.iter().copied());
            }
            i += 1;
        }
        mark_reads(k, &reads, &mut last);
    }
    for v in graph.roots() {
        last[v.index()] = end;
    }
    (def, last)
}
