//! Code generation: compiles a whole training step (forward, loss, backward, optimizer update)
//! into one native function with Cranelift.
//!
//! The backend-neutral `kernel` layer groups IR nodes into kernels (`kernel::schedule`), gives
//! every stored value a fixed place in one arena sized for `max_batch` (`kernel::memory`) and
//! describes each kernel's loops (`kernel::loops`); `emit` writes the Cranelift IR, and this module drives it
//! into any `cranelift_module::Module` (`translate`): the JIT (`compile`, which owns the module,
//! the arena and the one `unsafe` call into native code) or an object file (`compile_object`).
//! Small matrix products are emitted as register-blocked Cranelift kernels; large ones call
//! `gemm::kiln_sgemm`, one of the runtime support functions listed in `support.rs`, which runs
//! the `gemm-f32` crate's micro-kernels on packing buffers planned with the step (see
//! `emit/matmul.rs` and `gemm.rs`).

mod adam;
mod emit;
pub mod gemm;
mod kernel;
pub mod library;
pub mod onnx;
mod profile;
mod recurrence;
mod support;
#[cfg(test)]
mod tests;
mod window;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use cranelift_codegen::ir::Signature;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, ir};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use cranelift_object::{ObjectBuilder, ObjectModule};

use crate::buffer::Buffer;
use crate::ir::{DType, Graph};
use kernel::memory::{self, Buf, MemoryPlan};
use kernel::schedule;
pub use profile::{KernelInfo, Phase};

#[derive(Clone, Debug)]
pub struct CodegenConfig {
    /// The largest batch `run` will be called with; buffers are sized for it.
    pub max_batch: usize,
}

pub use kernel::products::MatmulPolicy;

#[derive(Clone, Debug, PartialEq)]
pub struct CodegenError {
    pub message: String,
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "codegen: {}", self.message)
    }
}

impl std::error::Error for CodegenError {}

fn err(message: impl Into<String>) -> CodegenError {
    CodegenError {
        message: message.into(),
    }
}

/// `step(arena, iarena, batch)`; `unsafe` because it trusts the pointers and the batch size.
type StepFn = unsafe extern "C" fn(*mut f32, *mut i32, i64);

/// A compiled training step with its buffers.
pub struct CompiledStep {
    // Owns the executable memory `step` points into.
    _module: JITModule,
    step: StepFn,
    /// Every buffer of the step; a large one on huge pages (`crate::buffer`).
    arena: Buffer<f32>,
    /// Index of the first (64-byte aligned) element in `arena`.
    base: usize,
    iarena: Buffer<i32>,
    plan: MemoryPlan,
    graph: Graph,
    max_batch: usize,
    /// Packing buffers and worker threads of the step's matrix products.
    gemm: gemm::Gemm,
    /// Only in a step compiled by `compile_profiled`.
    profile: Option<Profile>,
}

/// A profiled step's timed sites and the time each has taken over the runs so far.
struct Profile {
    sites: Vec<KernelInfo>,
    totals: Vec<Duration>,
    runs: u64,
}

/// The name the step function is declared under: looked up in the JIT, exported by an object
/// file (a C-linkable name, so not the bare `step`).
pub const STEP_SYMBOL: &str = "kiln_step";

/// The host's ISA with Kiln's flags, shared by the JIT and object files; `pic` for code linked
/// into another program (an object file), not for the JIT, which places it in this process.
fn host_isa(pic: bool) -> Result<OwnedTargetIsa, CodegenError> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| err(format!("cranelift flag {k}: {e}")))
    };
    set(&mut flags, "opt_level", "speed")?;
    // Cranelift checks its input function before compiling it: in debug builds (every test),
    // not in release builds, where the check was about two fifths of `seed`'s compile time.
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    set(&mut flags, "enable_verifier", verify)?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", if pic { "true" } else { "false" })?;
    // cranelift_native turns on the host's ISA features (SSE4.1, AVX, FMA, ...).
    cranelift_native::builder()
        .map_err(|e| err(format!("host ISA: {e}")))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| err(format!("host ISA: {e}")))
}

fn new_jit_module() -> Result<JITModule, CodegenError> {
    let mut builder = JITBuilder::with_isa(host_isa(false)?, default_libcall_names());
    for symbol in support::SYMBOLS {
        builder.symbol(symbol.name, symbol.address);
    }
    Ok(JITModule::new(builder))
}

/// How `translate` builds a step: with a timer call after every kernel (`kiln run --profile`),
/// with Adam's native update where the host runs it, and under which exported name.
#[derive(Clone, Copy)]
struct StepOptions<'a> {
    profiled: bool,
    native_update: bool,
    symbol: &'a str,
}

impl StepOptions<'_> {
    const PLAIN: StepOptions<'static> = StepOptions {
        profiled: false,
        native_update: true,
        symbol: STEP_SYMBOL,
    };
}

/// Builds the step function into `ctx.func` and declares it in `module` (JIT or object file
/// alike); returns its id.
fn translate<M: Module>(
    module: &mut M,
    ctx: &mut Context,
    graph: &Graph,
    sched: &schedule::Schedule,
    plan: &MemoryPlan,
    options: StepOptions,
) -> Result<(FuncId, usize, emit::SiteLabels), CodegenError> {
    let StepOptions {
        profiled,
        native_update,
        symbol: step_symbol,
    } = options;
    let ptr = module.target_config().pointer_type();
    let call_conv = module.isa().default_call_conv();
    // The emitter takes a reference to every helper it may call, but a helper is declared in the
    // module (in an object file: an undefined symbol) only once the step is known to call it.
    // Until then its reference carries a placeholder name in a namespace nothing resolves.
    let mut imports: Vec<Import> = Vec::new();
    let mut import = |func: &mut ir::Function, symbol: &'static support::Symbol| {
        let signature = func.import_signature(symbol.signature(call_conv, ptr));
        let index = imports.len() as u32;
        let name = func.declare_imported_user_function(ir::UserExternalName::new(
            PLACEHOLDER_NAMESPACE,
            index,
        ));
        let func_ref = func.import_function(ir::ExtFuncData {
            name: ir::ExternalName::user(name),
            signature,
            colocated: false,
            patchable: false,
        });
        imports.push(Import {
            symbol,
            name,
            func_ref,
        });
        func_ref
    };
    let func = &mut ctx.func;
    func.signature = Signature::new(call_conv);
    func.signature
        .params
        .extend(emit::Emitter::signature_params(ptr));
    let helpers = emit::Helpers {
        gemm: import(func, &support::SGEMM),
        window: import(func, &support::WINDOW),
        recurrence: import(func, &support::RECURRENCE),
        logf: import(func, &support::LOGF),
        powf: import(func, &support::POWF),
        adam: (native_update && adam::available()).then(|| import(func, &support::ADAM)),
        mark: profiled.then(|| import(func, &support::PROFILE_MARK)),
    };
    let mut fctx = FunctionBuilderContext::new();
    let builder = FunctionBuilder::new(func, &mut fctx);
    let target = module.target_config();
    let fma = module
        .isa()
        .isa_flags()
        .iter()
        .any(|f| f.name == "has_fma" && f.as_bool() == Some(true));
    let (marks, native) =
        emit::Emitter::new(builder, graph, sched, plan, helpers, fma).emit_all(target)?;

    let called: HashSet<ir::FuncRef> = ctx
        .func
        .layout
        .blocks()
        .flat_map(|block| ctx.func.layout.block_insts(block))
        .filter_map(|inst| match ctx.func.dfg.insts[inst] {
            ir::InstructionData::Call { func_ref, .. } => Some(func_ref),
            _ => None,
        })
        .collect();
    // Declared in the table's order, then the step, so that ids (and the dumped names) do not
    // depend on the order the emitter asked for them.
    for symbol in support::SYMBOLS {
        let Some(import) = imports
            .iter()
            .find(|i| std::ptr::eq(i.symbol, symbol) && called.contains(&i.func_ref))
        else {
            continue;
        };
        let sig = symbol.signature(call_conv, ptr);
        let id = module
            .declare_function(symbol.name, Linkage::Import, &sig)
            .map_err(|e| err(format!("declare {}: {e}", symbol.name)))?;
        ctx.func
            .params
            .reset_user_func_name(import.name, ir::UserExternalName::new(0, id.as_u32()));
    }
    let id = module
        .declare_function(step_symbol, Linkage::Export, &ctx.func.signature)
        .map_err(|e| err(format!("declare {step_symbol}: {e}")))?;
    Ok((id, marks, native))
}

/// A helper imported into the step function, under a placeholder name until declared.
struct Import {
    symbol: &'static support::Symbol,
    name: ir::UserExternalNameRef,
    func_ref: ir::FuncRef,
}

/// Where `translate` names helpers before it knows the step calls them; `cranelift_module` uses
/// namespaces 0 (functions) and 1 (data).
const PLACEHOLDER_NAMESPACE: u32 = 2;

/// An upper bound on a step's buffers (64 GiB of f32), far beyond any machine this runs on, so
/// absurd sizes fail here with a message instead of in the allocator.
const MAX_ARENA_ELEMENTS: usize = 1 << 34;

fn prepare(
    graph: &Graph,
    config: &CodegenConfig,
    policy: MatmulPolicy,
) -> Result<(schedule::Schedule, MemoryPlan), CodegenError> {
    let problems = crate::ir::verify::verify(graph);
    if let Some(p) = problems.first() {
        return Err(err(format!("invalid graph: {p}")));
    }
    if config.max_batch == 0 {
        return Err(err("max_batch must be at least 1"));
    }
    // Every planned offset is at most the sum of all values' sizes (plus alignment), so once this
    // sum fits, the memory plan's arithmetic cannot overflow.
    let total = graph.nodes.iter().try_fold(0usize, |total, node| {
        total.checked_add(node.ty.shape.checked_numel(config.max_batch)?)
    });
    if total.is_none_or(|n| n > MAX_ARENA_ELEMENTS) {
        return Err(err(format!(
            "the step's buffers at batch {} would exceed {} GiB",
            config.max_batch,
            (MAX_ARENA_ELEMENTS * 4) >> 30
        )));
    }
    let sched = schedule::schedule(graph)?;
    let plan = memory::plan(graph, &sched, config.max_batch, policy);
    Ok((sched, plan))
}

/// Compiles the training step of `graph` for batches of up to `config.max_batch`.
pub fn compile(graph: &Graph, config: &CodegenConfig) -> Result<CompiledStep, CodegenError> {
    compile_with(graph, config, MatmulPolicy::Auto)
}

/// `compile` with a chosen way of compiling matrix products (benchmarks compare them).
pub fn compile_with(
    graph: &Graph,
    config: &CodegenConfig,
    policy: MatmulPolicy,
) -> Result<CompiledStep, CodegenError> {
    build(graph, config, policy, false, true)
}

/// `compile`, with a timer call after every kernel and update loop: the step `kiln run
/// --profile` measures (see `profile.rs`). It computes exactly what the ordinary step does.
pub fn compile_profiled(
    graph: &Graph,
    config: &CodegenConfig,
) -> Result<CompiledStep, CodegenError> {
    build(graph, config, MatmulPolicy::Auto, true, true)
}

/// `compile_with`, with Adam's update as an emitted Cranelift loop even where the native one
/// would run (tests compare the two).
#[cfg(test)]
pub(crate) fn compile_emitted_update(
    graph: &Graph,
    config: &CodegenConfig,
) -> Result<CompiledStep, CodegenError> {
    build(graph, config, MatmulPolicy::Auto, false, false)
}

fn build(
    graph: &Graph,
    config: &CodegenConfig,
    policy: MatmulPolicy,
    profiled: bool,
    native_update: bool,
) -> Result<CompiledStep, CodegenError> {
    let (sched, plan) = prepare(graph, config, policy)?;
    let mut profile = if profiled {
        let sites = profile::sites(graph, &sched, &plan)?;
        Some(Profile {
            totals: vec![Duration::ZERO; sites.len()],
            sites,
            runs: 0,
        })
    } else {
        None
    };
    let mut module = new_jit_module()?;
    let mut ctx = module.make_context();
    let (id, marks, native_updates) = translate(
        &mut module,
        &mut ctx,
        graph,
        &sched,
        &plan,
        StepOptions {
            profiled,
            native_update,
            symbol: STEP_SYMBOL,
        },
    )?;
    if let Some(profile) = &profile
        && profile.sites.len() != marks
    {
        return Err(err(format!(
            "the profiled step has {marks} timer calls for {} kernels",
            profile.sites.len()
        )));
    }
    if let Some(profile) = &mut profile {
        // The update loops the emitter replaced by the native update say so.
        for (site, label) in native_updates {
            if let Some(info) = profile.sites.get_mut(site) {
                info.label = label;
            }
        }
    }
    module
        .define_function(id, &mut ctx)
        .map_err(|e| err(format!("cranelift: {e:?}")))?;
    module.clear_context(&mut ctx);
    module
        .finalize_definitions()
        .map_err(|e| err(format!("cranelift: {e}")))?;
    let code = module.get_finalized_function(id);
    // SAFETY: `code` is the function just defined with the signature
    // (pointer, pointer, i64) -> () in the platform's default calling convention, which is
    // what `extern "C" fn(*mut f32, *mut i32, i64)` means on the hosts Cranelift supports; the
    // module that owns the code lives in the returned `CompiledStep` next to the pointer.
    let step = unsafe { std::mem::transmute::<*const u8, StepFn>(code) };
    let arena: Buffer<f32> = zeroed(plan.f32_len + memory::ALIGN)?;
    let base = arena.as_ptr().align_offset(64);
    Ok(CompiledStep {
        _module: module,
        step,
        arena,
        base,
        iarena: zeroed(plan.i32_len)?,
        plan,
        graph: graph.clone(),
        max_batch: config.max_batch,
        gemm: gemm::Gemm::for_graph(
            graph,
            config.max_batch,
            gemm::default_threads(graph, config.max_batch),
        ),
        profile,
    })
}

/// The training step of `graph` as a relocatable object file for this host (`kiln build`
/// compiles an inference graph the same way: `library.rs`). It defines
/// `STEP_SYMBOL`, `step(arena: *mut f32, iarena: *mut i32, batch: i64)` with buffers at the
/// offsets of the memory plan for `config.max_batch`, and leaves the runtime support it calls
/// (`kiln_sgemm`, …: the table in `support.rs`) as undefined symbols for the link to resolve.
/// The code is the JIT's (same emitter, same host features, so `kiln_adam` where this host
/// runs it), compiled position-independent.
pub fn compile_object(graph: &Graph, config: &CodegenConfig) -> Result<Vec<u8>, CodegenError> {
    let (sched, plan) = prepare(graph, config, MatmulPolicy::Auto)?;
    let builder = ObjectBuilder::new(
        host_isa(true)?,
        graph.name.as_bytes(),
        default_libcall_names(),
    )
    .map_err(|e| err(format!("object file: {e}")))?;
    let mut module = ObjectModule::new(builder);
    let mut ctx = module.make_context();
    let (id, _, _) = translate(
        &mut module,
        &mut ctx,
        graph,
        &sched,
        &plan,
        StepOptions::PLAIN,
    )?;
    module
        .define_function(id, &mut ctx)
        .map_err(|e| err(format!("cranelift: {e:?}")))?;
    module
        .finish()
        .emit()
        .map_err(|e| err(format!("object file: {e}")))
}

/// A zero-filled buffer, or an error when the machine cannot provide it.
fn zeroed<T: bytemuck::Pod>(len: usize) -> Result<Buffer<T>, CodegenError> {
    Buffer::zeroed(len).map_err(|e| {
        err(format!(
            "cannot allocate {} MiB for the step's buffers",
            e.bytes >> 20
        ))
    })
}

/// The Cranelift IR of the step function, before Cranelift's own optimizations.
pub fn clif_text(graph: &Graph, config: &CodegenConfig) -> Result<String, CodegenError> {
    let (sched, plan) = prepare(graph, config, MatmulPolicy::Auto)?;
    let mut module = new_jit_module()?;
    let mut ctx = module.make_context();
    translate(
        &mut module,
        &mut ctx,
        graph,
        &sched,
        &plan,
        StepOptions::PLAIN,
    )?;
    let header = format!(
        "; step of graph `{}`: (arena: *f32, iarena: *i32, batch: i64), buffers at constant \
         element offsets\n; fn0 = kiln_sgemm, fn1 = kiln_logf, fn2 = kiln_powf, fn3 = kiln_adam (the \
         native Adam update, on hosts with AVX2 and FMA); u2:N names a helper this step never \
         calls\n",
        graph.name
    );
    Ok(header + &ctx.func.display().to_string())
}

/// `kiln dump --stage kernels`: the kernels with the IR nodes each covers, then the update
/// loops as emitted (per-parameter loops of equal structure collapsed into flat loops).
pub fn schedule_text(graph: &Graph) -> Result<String, CodegenError> {
    let (sched, plan) = prepare(graph, &CodegenConfig { max_batch: 1 }, MatmulPolicy::Auto)?;
    let mut out = schedule::schedule_text(&sched, graph);
    let p = kernel::loops::Plan {
        graph,
        sched: &sched,
        mem: &plan,
    };
    for (i, run) in p.update_runs()?.iter().enumerate() {
        out.push_str(&format!("update loop {i}: {}\n", run.describe()));
    }
    Ok(out)
}

impl CompiledStep {
    fn f32_range(&self, buf: Buf, len: usize) -> std::ops::Range<usize> {
        match buf {
            Buf::F32(o) => self.base + o..self.base + o + len,
            Buf::I32(o) => o..o + len,
        }
    }

    pub fn param(&self, index: usize) -> &[f32] {
        let len = self.graph.params[index].shape.numel(1);
        &self.arena[self.f32_range(Buf::F32(self.plan.params[index]), len)]
    }

    pub fn param_mut(&mut self, index: usize) -> &mut [f32] {
        let len = self.graph.params[index].shape.numel(1);
        let r = self.f32_range(Buf::F32(self.plan.params[index]), len);
        &mut self.arena[r]
    }

    pub fn state(&self, index: usize) -> &[f32] {
        let len = self.graph.states[index].shape.numel(self.max_batch);
        &self.arena[self.f32_range(Buf::F32(self.plan.states[index]), len)]
    }

    pub fn state_mut(&mut self, index: usize) -> &mut [f32] {
        let len = self.graph.states[index].shape.numel(self.max_batch);
        let r = self.f32_range(Buf::F32(self.plan.states[index]), len);
        &mut self.arena[r]
    }

    /// The buffer the runtime fills with input `index` for a batch of `batch` rows.
    pub fn input_f32_mut(&mut self, index: usize, batch: usize) -> &mut [f32] {
        let info = &self.graph.inputs[index];
        assert_eq!(info.ty.dtype, DType::F32, "input {} is not f32", info.name);
        assert!(batch <= self.max_batch, "batch {batch} > max_batch");
        let r = self.f32_range(self.plan.inputs[index], info.ty.shape.numel(batch));
        &mut self.arena[r]
    }

    pub fn input_i32_mut(&mut self, index: usize, batch: usize) -> &mut [i32] {
        let info = &self.graph.inputs[index];
        assert_eq!(info.ty.dtype, DType::I32, "input {} is not i32", info.name);
        assert!(batch <= self.max_batch, "batch {batch} > max_batch");
        let r = self.f32_range(self.plan.inputs[index], info.ty.shape.numel(batch));
        &mut self.iarena[r]
    }

    /// Runs one training step: one call into native code, no allocation.
    pub fn run(&mut self, batch: usize) {
        assert!(
            batch <= self.max_batch,
            "batch {batch} exceeds max_batch {}",
            self.max_batch
        );
        let arena = self.arena[self.base..].as_mut_ptr();
        let iarena = self.iarena.as_mut_ptr();
        let _gemm = gemm::install(&mut self.gemm);
        let _clock = self.profile.as_mut().map(|p| {
            p.runs += 1;
            profile::install(&mut p.totals)
        });
        // SAFETY: the step only touches `arena[base..base + f32_len]` and
        // `iarena[..i32_len]` (offsets planned for max_batch, and batch <= max_batch), both
        // allocated with that length and exclusively borrowed here for the call; its matrix
        // products use `self.gemm`, installed above for the call and not otherwise borrowed.
        unsafe { (self.step)(arena, iarena, batch as i64) };
    }

    /// Threads a large matrix product is split over. By default one, unless some product of the
    /// step is large enough to gain from more (`gemm::PARALLEL_MIN_MACS` multiply-adds); then
    /// as many cores as the process may run on, at most two. Results do not depend on it.
    pub fn threads(&self) -> usize {
        self.gemm.threads()
    }

    /// Sets the threads large matrix products are split over (at least 1); starts or stops
    /// worker threads now, so that `run` does not.
    pub fn set_threads(&mut self, threads: usize) {
        self.gemm.set_threads(threads);
    }

    /// Parks this step's worker threads until its next `run` instead of letting them spin for
    /// the next product: call it when another step runs in between, whose workers need the
    /// cores. Results do not change; the next `run` pays for waking them.
    pub fn rest_threads(&self) {
        self.gemm.rest();
    }

    /// A profiled step's kernels (see `compile_profiled`) with the total time each has taken
    /// over the runs since the last `reset_kernel_times`, and the number of those runs; `None`
    /// for an ordinary step.
    pub fn kernel_times(&self) -> Option<(&[KernelInfo], &[Duration], u64)> {
        let p = self.profile.as_ref()?;
        Some((&p.sites, &p.totals, p.runs))
    }

    /// Zeroes a profiled step's kernel times (e.g. after warm-up runs).
    pub fn reset_kernel_times(&mut self) {
        if let Some(p) = &mut self.profile {
            p.totals.fill(Duration::ZERO);
            p.runs = 0;
        }
    }

    /// A named graph output after `run`, for `batch` rows.
    pub fn output(&self, name: &str, batch: usize) -> Option<&[f32]> {
        let v = self.graph.output(name)?;
        let buf = *self.plan.home.get(&v)?;
        let len = self.graph.shape(v).numel(batch);
        match buf {
            Buf::F32(_) => Some(&self.arena[self.f32_range(buf, len)]),
            Buf::I32(_) => None,
        }
    }

    /// ∂loss/∂param as computed by the last `run` (empty if the graph has none).
    pub fn gradient(&self, param: usize) -> &[f32] {
        let Some(g) = self.graph.gradients.iter().find(|g| g.param == param) else {
            return &[];
        };
        let Some(&buf) = self.plan.home.get(&g.value) else {
            return &[];
        };
        let len = self.graph.shape(g.value).numel(self.max_batch);
        &self.arena[self.f32_range(buf, len)]
    }
}
