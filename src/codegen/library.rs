//! The ahead-of-time half of `kiln build`: an inference graph compiled into a relocatable
//! object file that a C library is linked from. The object holds the step function (the JIT's
//! scheduler, memory plan and emitter, so the same kernels) and the weights as one read-only
//! array; the C wrapper (`driver::library`) copies the weights into a context's arena once and
//! calls the step.
//!
//! The runtime support the step calls is Rust inside Kiln (`support.rs`), which a library that
//! links nothing but libc cannot carry. The library links `library_support.c` in its place,
//! compiled by the system's C compiler for the building machine: `kiln_logf` and `kiln_powf`
//! over libm (which is what Rust's `ln` and `powf` call), and a `kiln_sgemm` of register tiles
//! whose every output element is the same in-order sum the emitted Cranelift kernel computes,
//! and `kiln_window`'s forward ops (a convolution's patches, max and mean pooling). Ops with no
//! C counterpart (the recurrent layers' `kiln_recurrence`, the windowed ops' gradients) are
//! refused, naming the op, rather than half-supported.

use cranelift_module::{DataDescription, Linkage, Module, default_libcall_names};
use cranelift_object::{ObjectBuilder, ObjectModule};

use super::kernel::memory::Buf;
use super::kernel::products::MatmulPolicy;
use super::{CodegenConfig, CodegenError, StepOptions, err, host_isa, prepare, translate};
use crate::diag::Span;
use crate::ir::op::{Op, OpKind, StructuredKind};
use crate::ir::{DType, Graph};

/// The runtime support a library's step may call: what `SUPPORT_C` defines.
pub const LIBRARY_SUPPORT: [&str; 4] = ["kiln_sgemm", "kiln_window", "kiln_logf", "kiln_powf"];

/// The C source of the library's runtime support.
pub const SUPPORT_C: &str = include_str!("library_support.c");

/// The compiled object and where its buffers are, in f32 (or i32) elements from the arena's
/// 64-byte-aligned start.
#[derive(Clone, Debug)]
pub struct LibraryObject {
    pub object: Vec<u8>,
    /// Elements of the f32 arena and of the i32 arena the step uses at `max_batch`.
    pub f32_len: usize,
    pub i32_len: usize,
    /// Each parameter's offset in the arena and its length; in the weights array the
    /// parameters follow each other in the same order.
    pub params: Vec<(usize, usize)>,
    /// Where the step reads the features (`[batch, features]`, row-major).
    pub input: usize,
    /// Where the step writes the output (`[batch, width]`, row-major).
    pub output: usize,
    /// The symbols the object defines.
    pub step_symbol: String,
    pub weights_symbol: String,
    /// The runtime support the step calls (a subset of `LIBRARY_SUPPORT`).
    pub support: Vec<String>,
}

/// Why a graph cannot become a library.
#[derive(Clone, Debug, PartialEq)]
pub enum LibraryError {
    /// An op whose kernel is a native call the library does not hold, with its source.
    Unsupported {
        op: String,
        span: Option<Span>,
    },
    Codegen(CodegenError),
}

impl From<CodegenError> for LibraryError {
    fn from(e: CodegenError) -> Self {
        LibraryError::Codegen(e)
    }
}

/// Compiles `graph` (an inference graph with one f32 input `input` and the output `output`)
/// for batches of up to `config.max_batch`, with `params` (in `graph.params` order) as its
/// weights, into an object whose symbols start with `prefix`.
pub fn compile_library(
    graph: &Graph,
    params: &[Vec<f32>],
    input: &str,
    output: &str,
    prefix: &str,
    config: &CodegenConfig,
) -> Result<LibraryObject, LibraryError> {
    let policy = MatmulPolicy::Auto;
    for node in &graph.nodes {
        // The forward windowed ops have C counterparts; their gradients and scans do not.
        let forward_window = matches!(node.op, Op::Unfold { .. } | Op::Pool { .. });
        let native = matches!(
            node.op.kind(),
            OpKind::Structured(StructuredKind::Window | StructuredKind::Scan)
        );
        if native && !forward_window {
            return Err(LibraryError::Unsupported {
                op: node.op.name().to_string(),
                span: node.span,
            });
        }
    }
    if params.len() != graph.params.len() {
        return Err(err("one weight array per parameter").into());
    }
    let input_slot = (graph.inputs.iter())
        .position(|i| i.name == input && i.ty.dtype == DType::F32)
        .ok_or_else(|| err(format!("the graph has no f32 input `{input}`")))?;
    let output_value = graph
        .output(output)
        .ok_or_else(|| err(format!("the graph has no output `{output}`")))?;

    let (sched, plan) = prepare(graph, config, policy)?;
    let f32_offset = |buf: Option<&Buf>, what: &str| match buf {
        Some(Buf::F32(offset)) => Ok(*offset),
        _ => Err(err(format!("the {what} has no f32 buffer"))),
    };
    let input_offset = f32_offset(plan.inputs.get(input_slot), "input")?;
    let output_offset = f32_offset(plan.home.get(&output_value), "output")?;

    let builder = ObjectBuilder::new(host_isa(true)?, prefix.as_bytes(), default_libcall_names())
        .map_err(|e| err(format!("object file: {e}")))?;
    let mut module = ObjectModule::new(builder);
    let mut ctx = module.make_context();
    let step_symbol = format!("{prefix}_kiln_step");
    let (id, _, _) = translate(
        &mut module,
        &mut ctx,
        graph,
        &sched,
        &plan,
        StepOptions {
            profiled: false,
            native_update: false,
            symbol: &step_symbol,
        },
    )?;
    module
        .define_function(id, &mut ctx)
        .map_err(|e| err(format!("cranelift: {e:?}")))?;
    let support: Vec<String> = (module.declarations().get_functions())
        .filter(|(_, f)| f.linkage == Linkage::Import)
        .map(|(_, f)| f.name.clone().unwrap_or_default())
        .collect();
    if let Some(other) = support
        .iter()
        .find(|s| !LIBRARY_SUPPORT.contains(&s.as_str()))
    {
        return Err(err(format!(
            "the step calls `{other}`, which a library cannot hold"
        ))
        .into());
    }

    let weights_symbol = format!("{prefix}_kiln_weights");
    let mut bytes = Vec::new();
    let mut layout = Vec::new();
    for (index, values) in params.iter().enumerate() {
        let len = graph.params[index].shape.numel(1);
        if values.len() != len {
            return Err(err(format!(
                "parameter {index} has {} values for {len} elements",
                values.len()
            ))
            .into());
        }
        layout.push((plan.params[index], len));
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    // An empty array would be an undefined-size object; one zero float keeps it a definition.
    if bytes.is_empty() {
        bytes.extend(0f32.to_le_bytes());
    }
    let data = module
        .declare_data(&weights_symbol, Linkage::Export, false, false)
        .map_err(|e| err(format!("declare {weights_symbol}: {e}")))?;
    let mut description = DataDescription::new();
    description.define(bytes.into_boxed_slice());
    description.set_align(64);
    module
        .define_data(data, &description)
        .map_err(|e| err(format!("define {weights_symbol}: {e}")))?;
    let object = module
        .finish()
        .emit()
        .map_err(|e| err(format!("object file: {e}")))?;
    Ok(LibraryObject {
        object,
        f32_len: plan.f32_len,
        i32_len: plan.i32_len,
        params: layout,
        input: input_offset,
        output: output_offset,
        step_symbol,
        weights_symbol,
        support,
    })
}
