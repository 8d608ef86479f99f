//! `kiln build M.kiln -o DIR`: writes `DIR/NAME.h` and links `DIR/libNAME.a` and
//! `DIR/libNAME.so` with the system's C compiler (`$CC`, else `cc`) and `ar` from the parts
//! `driver::build_library` makes in memory.

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln::driver::{self, NativeLibrary};

/// What was built, for the summary line.
pub struct Built {
    pub model: String,
    pub files: Vec<PathBuf>,
}

pub fn build(
    bundle: &Path,
    output: &Path,
    name: Option<&str>,
    max_batch: usize,
) -> Result<Built, String> {
    if max_batch == 0 {
        return Err("error: --max-batch must be at least 1".into());
    }
    let open = super::open_bundle(bundle)?;
    let name = name.unwrap_or(open.model_name()).to_string();
    if !driver::is_c_identifier(&name) {
        return Err(format!(
            "error: `{name}` cannot prefix C names (it must be a C identifier and not a \
             keyword); choose one with --name"
        ));
    }
    let library = driver::build_library(&open, &name, max_batch, &bundle.display().to_string())
        .map_err(|e| super::bundle_error(e, &open.source, bundle))?;
    std::fs::create_dir_all(output)
        .map_err(|e| format!("error: cannot create `{}`: {e}", output.display()))?;
    let work =
        tempfile::tempdir().map_err(|e| format!("error: cannot create a temporary folder: {e}"))?;
    let files = link(&library, work.path(), output)?;
    Ok(Built {
        model: open.model_name().to_string(),
        files,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes)
        .map_err(|e| format!("error: cannot write `{}`: {e}", path.display()))
}

/// Runs a tool, with its output in the error when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|e| {
        format!(
            "error: cannot run `{}` ({e}); `kiln build` links with the system's C compiler \
             (set CC to choose one)",
            command.get_program().to_string_lossy()
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "error: {shown} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn link(library: &NativeLibrary, work: &Path, output: &Path) -> Result<Vec<PathBuf>, String> {
    let n = &library.name;
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    // The header beside the wrapper, which includes it; into the output folder only once
    // everything has linked, so a failed build leaves nothing half-made there.
    write(&work.join(format!("{n}.h")), library.header.as_bytes())?;
    let wrapper_c = work.join(format!("{n}_kiln_api.c"));
    let wrapper_o = work.join(format!("{n}_kiln_api.o"));
    let step_o = work.join(format!("{n}_kiln_model.o"));
    write(&wrapper_c, library.wrapper.as_bytes())?;
    write(&step_o, &library.object)?;
    // No FMA contraction and no fast math: the wrapper's arithmetic is `kiln predict`'s,
    // operation for operation.
    run(Command::new(&cc)
        .args([
            "-std=c11",
            "-O2",
            "-fPIC",
            "-fvisibility=hidden",
            "-ffp-contract=off",
            "-c",
        ])
        .arg("-I")
        .arg(work)
        .arg(&wrapper_c)
        .arg("-o")
        .arg(&wrapper_o))?;

    // The runtime support: vectorized for this machine, as the step is, and again without
    // contraction, so that each product is the emitted kernel's sum.
    let support_c = work.join("kiln_support.c");
    let support_o = work.join(format!("{n}_kiln_support.o"));
    write(&support_c, library.support.as_bytes())?;
    run(Command::new(&cc)
        .args([
            "-std=c11",
            "-O3",
            "-march=native",
            "-fPIC",
            "-fvisibility=hidden",
            "-ffp-contract=off",
            "-c",
        ])
        .arg(&support_c)
        .arg("-o")
        .arg(&support_o))?;

    let archive = output.join(format!("lib{n}.a"));
    // `ar` appends to an existing archive; start afresh.
    let _ = std::fs::remove_file(&archive);
    run(Command::new("ar")
        .arg("rcs")
        .arg(&archive)
        .arg(&step_o)
        .arg(&wrapper_o)
        .arg(&support_o))?;

    let script = work.join("exports.map");
    let globals: String = (library.exports.iter()).map(|e| format!("{e}; ")).collect();
    write(
        &script,
        format!("{{ global: {globals}local: *; }};\n").as_bytes(),
    )?;
    let shared = output.join(format!("lib{n}.so"));
    let mut version_script = std::ffi::OsString::from("-Wl,--version-script=");
    version_script.push(&script);
    run(Command::new(&cc)
        .args(["-shared", "-Wl,-z,noexecstack"])
        .arg(format!("-Wl,-soname,lib{n}.so"))
        .arg(version_script)
        .arg("-o")
        .arg(&shared)
        .arg(&step_o)
        .arg(&wrapper_o)
        .arg(&support_o)
        .arg("-lm"))?;
    let header = output.join(format!("{n}.h"));
    write(&header, library.header.as_bytes())?;
    Ok(vec![archive, shared, header])
}
