//! Scheduling: which IR values get a buffer, which are computed inside their consumer's loop,
//! and the ordered list of kernels that make up one training step.
//!
//! Rules (each keeps a value computed exactly once per element):
//! - an elementwise value with a single user of the same shape that loops over elements
//!   (elementwise op or reduction) is *inlined* into that user's loop;
//! - a `broadcast` is an index map, never stored unless something needs it in memory
//!   (a matmul, a softmax, or the graph's outputs);
//! - an elementwise kernel whose loop reads a single-use matmul result of its own shape becomes
//!   that matmul's epilogue and runs in place over the product;
//! - the optimizer update: elementwise values whose users are all in the update are computed
//!   in per-parameter update loops that write the new parameter/state values in place. Loops
//!   with the same structure are later collapsed into one loop over the flat parameter buffer.

use std::collections::HashMap;
use std::fmt::Write;

use crate::codegen::CodegenError;
use crate::ir::graph::Slot;
use crate::ir::{
    DType, ElementwiseKind, Graph, LeafKind, Op, OpKind, Shape, StructuredKind, ValueId,
};

#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// A fused elementwise loop over `root`'s shape; with `matmul`, it is that product's
    /// epilogue (gemm first, then this loop in place over the product).
    Elementwise {
        root: ValueId,
        matmul: Option<ValueId>,
        nodes: Vec<ValueId>,
    },
    /// A matrix product without epilogue.
    MatMul { node: ValueId },
    /// A reduction with its inlined elementwise producers.
    Reduce { node: ValueId, nodes: Vec<ValueId> },
    /// Softmax or log-softmax over rows.
    Softmax { node: ValueId },
    /// A strided copy: `transpose`, `slice`, or a `reshape` that cannot share its input's
    /// buffer (the memory plan aliases the others, and then this kernel does nothing).
    Copy { node: ValueId },
    /// `concat`: one loop per input, each writing its part of the output.
    Concat { node: ValueId },
    /// `gather` or `scatter_add`: rows addressed by integer indices.
    Rows { node: ValueId },
    /// `unfold`, `fold`, pooling or its gradient: a call into native code.
    Window { node: ValueId },
    /// `recurrence` or its gradient: a call into native code that loops over the time steps.
    Scan { node: ValueId },
    /// One optimizer-update loop (see `UpdateGroup`).
    Update { group: usize },
}

/// Values computed together in one update loop and the slots they overwrite.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateGroup {
    pub shape: Shape,
    /// (value, target), parameter targets first, then in discovery order.
    pub outputs: Vec<(ValueId, Slot)>,
    /// Every value computed in the loop.
    pub nodes: Vec<ValueId>,
}

impl UpdateGroup {
    /// The parameter this loop updates, when it updates exactly one.
    pub fn param(&self) -> Option<usize> {
        let mut params = self.outputs.iter().filter_map(|(_, t)| match t {
            Slot::Param(p) => Some(*p),
            Slot::State(_) => None,
        });
        let first = params.next()?;
        params.next().is_none().then_some(first)
    }
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub kernels: Vec<Kernel>,
    pub groups: Vec<UpdateGroup>,
    /// Values stored in a buffer of their own (leaves with storage included).
    pub stored: Vec<bool>,
    /// matmul → the epilogue root that overwrites its buffer.
    pub epilogue_of: HashMap<ValueId, ValueId>,
}

fn err(message: impl Into<String>) -> CodegenError {
    CodegenError {
        message: message.into(),
    }
}

/// Whether the op is computed by a loop over its own shape (a reduction: its input's) into
/// which single-use elementwise producers can be fused.
fn takes_producers(kind: OpKind) -> bool {
    match kind {
        OpKind::Elementwise(ElementwiseKind::Map | ElementwiseKind::Indexed)
        | OpKind::Reduction => true,
        // A broadcast reads its input at other indices; one_hot reads labels, not producers.
        OpKind::Elementwise(ElementwiseKind::Broadcast | ElementwiseKind::Labels)
        | OpKind::Leaf(_)
        | OpKind::Structured(_) => false,
    }
}

// Node ids index several parallel tables here, so index loops read best.
#[allow(clippy::needless_range_loop)]
pub fn schedule(graph: &Graph) -> Result<Schedule, CodegenError> {
    let n = graph.nodes.len();
    let users = graph.users();
    check_supported(graph, &users)?;

    // Update values computed inside update loops ("local"), decided from the last node back.
    let mut out_root = vec![false; n];
    for (_, v) in &graph.outputs {
        out_root[v.index()] = true;
    }
    for g in &graph.gradients {
        out_root[g.value.index()] = true;
    }
    let mut update_target: HashMap<ValueId, Vec<Slot>> = HashMap::new();
    for u in &graph.updates {
        update_target.entry(u.value).or_default().push(u.target);
    }
    let slot_shape = |s: Slot| match s {
        Slot::Param(p) => graph.params[p].shape.clone(),
        Slot::State(s) => graph.states[s].shape.clone(),
    };
    let mut local = vec![false; n];
    for i in (0..n).rev() {
        let v = ValueId(i as u32);
        let node = &graph.nodes[i];
        // Only arithmetic: an update loop may be merged with others over one flat range,
        // where an element's index in its own shape is lost.
        if node.op.kind() != OpKind::Elementwise(ElementwiseKind::Map) || out_root[i] {
            continue;
        }
        let as_update = match update_target.get(&v).map(Vec::as_slice) {
            Some([t]) => slot_shape(*t) == node.ty.shape,
            Some(_) => false,
            None => true,
        };
        let us = &users[i];
        let users_local = us
            .iter()
            .all(|u| local[u.index()] && graph.shape(*u) == &node.ty.shape);
        local[i] = if update_target.contains_key(&v) {
            as_update && users_local
        } else {
            !us.is_empty() && users_local
        };
    }

    // Roots that must be stored: outputs, gradients, update values not computed in a loop.
    let mut root = out_root.clone();
    for u in &graph.updates {
        if !local[u.value.index()] {
            root[u.value.index()] = true;
        }
    }
    let live = liveness(graph, &root, &local);

    let mut stored = vec![false; n];
    let mut inlined = vec![false; n];
    for i in 0..n {
        let node = &graph.nodes[i];
        let fusing_user =
            |u: &ValueId| takes_producers(graph.node(*u).op.kind()) && !local[u.index()];
        let reduction = |u: &ValueId| graph.node(*u).op.kind() == OpKind::Reduction;
        // `concat` copies each input in a loop over that input's shape, which can read a
        // broadcast as an index map too.
        let broadcast_reader = |u: &ValueId| {
            fusing_user(u) || graph.node(*u).op.kind() == OpKind::Structured(StructuredKind::Concat)
        };
        stored[i] = match node.op.kind() {
            OpKind::Leaf(LeafKind::Buffer) => true,
            _ if !live[i] || local[i] => false,
            _ if root[i] => true,
            OpKind::Leaf(LeafKind::Scalar) => false,
            OpKind::Elementwise(ElementwiseKind::Broadcast) => users[i]
                .iter()
                .any(|u| !broadcast_reader(u) && !local[u.index()]),
            // One compare per element: cheaper to recompute in every consumer than to store.
            OpKind::Elementwise(ElementwiseKind::Labels)
                if users[i].iter().all(|u| {
                    fusing_user(u) && (graph.shape(*u) == &node.ty.shape || reduction(u))
                }) =>
            {
                inlined[i] = true;
                false
            }
            OpKind::Elementwise(_) => {
                let u = users[i].first();
                // A reduction loops over its input's shape, so its producer always fits.
                let same_loop =
                    u.is_some_and(|u| graph.shape(*u) == &node.ty.shape || reduction(u));
                let single = users[i].len() == 1 && fusing_user(&users[i][0]) && same_loop;
                inlined[i] = single;
                !single
            }
            OpKind::Reduction | OpKind::Structured(_) => true,
        };
    }

    // Elementwise kernels first (to find epilogues), then kernels in node order; a matmul with
    // an epilogue runs inside the epilogue's kernel.
    let mut epilogue_of = HashMap::new();
    let mut ew_nodes: HashMap<ValueId, (Vec<ValueId>, Option<ValueId>)> = HashMap::new();
    for i in 0..n {
        let node = &graph.nodes[i];
        let is_ew = matches!(
            node.op.kind(),
            OpKind::Elementwise(_) | OpKind::Leaf(LeafKind::Scalar)
        );
        if !stored[i] || !is_ew {
            continue;
        }
        let v = ValueId(i as u32);
        let mut nodes = vec![v];
        for &inp in &node.inputs {
            collect_inlined(graph, &inlined, inp, &mut nodes);
        }
        let matmul = epilogue_candidate(graph, &users, &root, &nodes, v);
        if let Some(m) = matmul {
            epilogue_of.insert(m, v);
        }
        ew_nodes.insert(v, (nodes, matmul));
    }
    let mut kernels = Vec::new();
    for i in 0..n {
        let v = ValueId(i as u32);
        let node = &graph.nodes[i];
        if !stored[i] {
            continue;
        }
        // One kernel per kind: a new structured kind must be given its kernel here.
        match node.op.kind() {
            OpKind::Leaf(LeafKind::Buffer) => {}
            OpKind::Structured(StructuredKind::MatMul) if epilogue_of.contains_key(&v) => {}
            OpKind::Structured(StructuredKind::MatMul) => kernels.push(Kernel::MatMul { node: v }),
            OpKind::Reduction => {
                let mut nodes = vec![v];
                collect_inlined(graph, &inlined, node.inputs[0], &mut nodes);
                kernels.push(Kernel::Reduce { node: v, nodes });
            }
            OpKind::Structured(StructuredKind::RowSoftmax) => {
                kernels.push(Kernel::Softmax { node: v })
            }
            OpKind::Structured(StructuredKind::Copy { .. }) => {
                kernels.push(Kernel::Copy { node: v })
            }
            OpKind::Structured(StructuredKind::Concat) => kernels.push(Kernel::Concat { node: v }),
            OpKind::Structured(StructuredKind::Rows) => kernels.push(Kernel::Rows { node: v }),
            OpKind::Structured(StructuredKind::Window) => kernels.push(Kernel::Window { node: v }),
            OpKind::Structured(StructuredKind::Scan) => kernels.push(Kernel::Scan { node: v }),
            OpKind::Elementwise(_) | OpKind::Leaf(LeafKind::Scalar) => {
                let (nodes, matmul) = ew_nodes.remove(&v).unwrap_or_default();
                kernels.push(Kernel::Elementwise {
                    root: v,
                    matmul,
                    nodes,
                });
            }
        }
    }

    let groups = update_groups(graph, &local, &users)?;
    for g in 0..groups.len() {
        kernels.push(Kernel::Update { group: g });
    }
    check_update_hazards(graph, &groups, &stored)?;
    Ok(Schedule {
        kernels,
        groups,
        stored,
        epilogue_of,
    })
}

/// A matmul read by an elementwise kernel's loop that can be overwritten in place.
fn epilogue_candidate(
    graph: &Graph,
    users: &[Vec<ValueId>],
    root: &[bool],
    nodes: &[ValueId],
    v: ValueId,
) -> Option<ValueId> {
    let shape = graph.shape(v);
    let mut found = None;
    for &node in nodes {
        for &inp in &graph.node(node).inputs {
            let is_mm = graph.node(inp).op.kind() == OpKind::Structured(StructuredKind::MatMul);
            if is_mm
                && !root[inp.index()]
                && users[inp.index()].len() == 1
                && graph.shape(inp) == shape
                && found.is_none()
            {
                found = Some(inp);
            }
        }
    }
    found
}

fn collect_inlined(graph: &Graph, inlined: &[bool], v: ValueId, out: &mut Vec<ValueId>) {
    if inlined[v.index()] && !out.contains(&v) {
        out.push(v);
        for &inp in &graph.node(v).inputs {
            collect_inlined(graph, inlined, inp, out);
        }
    }
}

fn liveness(graph: &Graph, root: &[bool], local: &[bool]) -> Vec<bool> {
    let mut live = vec![false; graph.nodes.len()];
    for i in 0..graph.nodes.len() {
        live[i] = root[i] || local[i];
    }
    for u in &graph.updates {
        live[u.value.index()] = true;
    }
    for i in (0..graph.nodes.len()).rev() {
        if live[i] {
            for inp in &graph.nodes[i].inputs {
                live[inp.index()] = true;
            }
        }
    }
    live
}

/// Rejects what the code generator cannot compile, before any work is done.
fn check_supported(graph: &Graph, users: &[Vec<ValueId>]) -> Result<(), CodegenError> {
    for (i, node) in graph.nodes.iter().enumerate() {
        if node.ty.dtype == DType::I32 {
            if !matches!(node.op, Op::Input { .. }) {
                return Err(err(format!(
                    "%{i}: i32 values other than inputs are not supported"
                )));
            }
            // Read only where the user takes indices.
            let reads_integers = |u: &ValueId| {
                let user = graph.node(*u);
                let at = user.op.integer_input();
                (user.inputs.iter().enumerate()).all(|(k, x)| x.index() != i || Some(k) == at)
            };
            if let Some(u) = users[i].iter().find(|u| !reads_integers(u)) {
                return Err(err(format!(
                    "%{}: i32 input used by {} (only one_hot, gather and scatter_add read \
                     integers)",
                    u.0,
                    graph.node(*u).op.name()
                )));
            }
        }
        if let Some(k) = node.op.integer_input()
            && !matches!(graph.node(node.inputs[k]).op, Op::Input { .. })
        {
            return Err(err(format!(
                "%{i}: {} of a non-input value",
                node.op.name()
            )));
        }
        if node.op.kind() == OpKind::Structured(StructuredKind::RowSoftmax)
            && node.ty.shape.rank() == 0
        {
            return Err(err(format!("%{i}: softmax of a scalar")));
        }
    }
    for (name, v) in &graph.outputs {
        if graph.dtype(*v) != DType::F32 {
            return Err(err(format!("output `{name}` is not f32")));
        }
    }
    Ok(())
}

#[allow(clippy::needless_range_loop)]
/// Connected sets of update-local values (plus their update targets).
fn update_groups(
    graph: &Graph,
    local: &[bool],
    users: &[Vec<ValueId>],
) -> Result<Vec<UpdateGroup>, CodegenError> {
    let n = graph.nodes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        p[x] = r;
        r
    }
    for i in 0..n {
        if local[i] {
            for u in &users[i] {
                let (a, b) = (find(&mut parent, i), find(&mut parent, u.index()));
                parent[a] = b;
            }
        }
    }
    let mut by_root: Vec<(usize, Vec<ValueId>)> = Vec::new();
    for i in 0..n {
        if local[i] {
            let r = find(&mut parent, i);
            match by_root.iter_mut().find(|(root, _)| *root == r) {
                Some((_, nodes)) => nodes.push(ValueId(i as u32)),
                None => by_root.push((r, vec![ValueId(i as u32)])),
            }
        }
    }
    let mut groups = Vec::new();
    for (_, nodes) in by_root {
        let mut outputs: Vec<(ValueId, Slot)> = graph
            .updates
            .iter()
            .filter(|u| nodes.contains(&u.value))
            .map(|u| (u.value, u.target))
            .collect();
        // Canonical order: parameter targets, then state targets in discovery order.
        outputs.sort_by_key(|(_, t)| matches!(t, Slot::State(_)));
        let order = discovery_order(graph, &outputs, local);
        outputs.sort_by_key(|(v, t)| {
            (
                matches!(t, Slot::State(_)),
                order.iter().position(|o| o == v).unwrap_or(usize::MAX),
            )
        });
        let shape = graph.shape(nodes[0]).clone();
        groups.push(UpdateGroup {
            shape,
            outputs,
            nodes,
        });
    }
    // Updates whose value is computed elsewhere are copies: one loop each.
    for u in &graph.updates {
        if !local[u.value.index()] {
            let shape = match u.target {
                Slot::Param(p) => graph.params[p].shape.clone(),
                Slot::State(s) => graph.states[s].shape.clone(),
            };
            if !graph.shape(u.value).broadcasts_to(&shape) {
                return Err(err(format!(
                    "update of {:?} with %{} of shape {}",
                    u.target,
                    u.value.0,
                    graph.shape(u.value)
                )));
            }
            groups.push(UpdateGroup {
                shape,
                outputs: vec![(u.value, u.target)],
                nodes: Vec::new(),
            });
        }
    }
    // Groups in parameter order, so that the flat layout follows the parameters.
    groups.sort_by_key(|g| g.param().unwrap_or(usize::MAX));
    Ok(groups)
}

/// Local values in depth-first order from the outputs (the canonical traversal).
pub fn discovery_order(graph: &Graph, outputs: &[(ValueId, Slot)], local: &[bool]) -> Vec<ValueId> {
    fn walk(graph: &Graph, v: ValueId, local: &[bool], out: &mut Vec<ValueId>) {
        if out.contains(&v) {
            return;
        }
        out.push(v);
        let broadcast = graph.node(v).op.kind() == OpKind::Elementwise(ElementwiseKind::Broadcast);
        if local[v.index()] || broadcast {
            for &inp in &graph.node(v).inputs {
                walk(graph, inp, local, out);
            }
        }
    }
    let mut out = Vec::new();
    for (v, _) in outputs {
        walk(graph, *v, local, &mut out);
    }
    out
}

/// A group must not read a slot that another group (or itself, at another index) overwrites.
fn check_update_hazards(
    graph: &Graph,
    groups: &[UpdateGroup],
    stored: &[bool],
) -> Result<(), CodegenError> {
    let mut writers: Vec<(Slot, usize)> = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for (_, t) in &group.outputs {
            if writers.iter().any(|w| w.0 == *t) {
                return Err(err(format!("{t:?} is updated twice")));
            }
            writers.push((*t, g));
        }
    }
    let writer = |slot: &Slot| writers.iter().find(|w| w.0 == *slot).map(|w| &w.1);
    for (g, group) in groups.iter().enumerate() {
        let mut reads = Vec::new();
        let mut seen = Vec::new();
        let mut stack: Vec<ValueId> = group.outputs.iter().map(|o| o.0).collect();
        while let Some(v) = stack.pop() {
            if seen.contains(&v) {
                continue;
            }
            seen.push(v);
            let node = graph.node(v);
            match node.op {
                Op::Param { index } => reads.push((Slot::Param(index), v)),
                Op::State { index } => reads.push((Slot::State(index), v)),
                _ if group.nodes.contains(&v) || (!stored[v.index()] && !node.op.is_leaf()) => {
                    stack.extend(node.inputs.iter().copied())
                }
                _ => {}
            }
        }
        for (slot, v) in reads {
            match writer(&slot) {
                Some(&w) if w != g => {
                    return Err(err(format!(
                        "update loop {g} reads {slot:?}, which update loop {w} overwrites"
                    )));
                }
                Some(_) if graph.shape(v) != &group.shape => {
                    return Err(err(format!(
                        "update loop {g} reads {slot:?} broadcast while overwriting it"
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// `kiln dump --stage kernels`: one line per kernel with the nodes it covers.
pub fn schedule_text(s: &Schedule, graph: &Graph) -> String {
    let mut out = String::new();
    let ids = |nodes: &[ValueId]| {
        let mut sorted = nodes.to_vec();
        sorted.sort();
        sorted
            .iter()
            .map(|v| format!("%{}", v.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (k, kernel) in s.kernels.iter().enumerate() {
        let line = match kernel {
            Kernel::Elementwise {
                root,
                matmul: Some(m),
                nodes,
            } => format!(
                "matmul+epilogue {} -> %{}: {} {}",
                graph.shape(*root),
                root.0,
                format_args!("%{}", m.0),
                ids(nodes)
            ),
            Kernel::Elementwise { root, nodes, .. } => {
                format!(
                    "elementwise {} -> %{}: {}",
                    graph.shape(*root),
                    root.0,
                    ids(nodes)
                )
            }
            Kernel::MatMul { node } => {
                format!("matmul {} -> %{}: %{}", graph.shape(*node), node.0, node.0)
            }
            Kernel::Reduce { node, nodes } => {
                format!(
                    "reduce {} -> %{}: {}",
                    graph.shape(*node),
                    node.0,
                    ids(nodes)
                )
            }
            Kernel::Softmax { node }
            | Kernel::Copy { node }
            | Kernel::Concat { node }
            | Kernel::Rows { node }
            | Kernel::Window { node }
            | Kernel::Scan { node } => format!(
                "{} {} -> %{}: %{}",
                graph.node(*node).op.name(),
                graph.shape(*node),
                node.0,
                node.0
            ),
            Kernel::Update { group } => {
                let g = &s.groups[*group];
                let targets = g
                    .outputs
                    .iter()
                    .map(|(v, t)| match t {
                        Slot::Param(p) => format!("{}:=%{}", graph.params[*p].name, v.0),
                        Slot::State(st) => format!("{}:=%{}", graph.states[*st].name, v.0),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                format!("update {} [{}]: {}", g.shape, targets, ids(&g.nodes))
            }
        };
        let _ = writeln!(out, "k{k}: {line}");
    }
    out
}
