// `CRAFT_MAX_ISA`: the widest instruction set Craft's kernels, and its choice of OpenBLAS kernels,
// may use (CKernels' `craft_max_isa`). docs/tensorcore.md, "Capping the instruction set".
import CKernels

/// The instruction-set cap set by the `CRAFT_MAX_ISA` environment variable (`avx512`, `avx2` or
/// `portable`), read once per process before the first kernel runs.
public enum InstructionSetCap {
    /// The variable's text, `nil` when unset or empty.
    public static var setting: String? {
        let text = String(cString: craft_max_isa_setting())
        return text.isEmpty ? nil : text
    }

    /// The cap in effect: `"avx2"` or `"portable"`, or `nil` when nothing is capped (unset, `avx512`,
    /// or a value not understood).
    public static var effective: String? {
        switch craft_max_isa() {
        case Int32(CRAFT_PATH_PORTABLE): return "portable"
        case Int32(CRAFT_PATH_AVX2): return "avx2"
        default: return nil
        }
    }

    /// For diagnostics: `nil` when the variable is unset, else for example
    /// "capped by CRAFT_MAX_ISA=avx2", "CRAFT_MAX_ISA=avx512, not capped" or
    /// "CRAFT_MAX_ISA=avx3 not understood, not capped".
    public static var note: String? {
        guard let setting else { return nil }
        if craft_max_isa_parse(setting) < 0 { return "CRAFT_MAX_ISA=\(setting) not understood, not capped" }
        return effective == nil ? "CRAFT_MAX_ISA=\(setting), not capped" : "capped by CRAFT_MAX_ISA=\(setting)"
    }
}
