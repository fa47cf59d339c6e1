// The surrogate backend as the runtimes use it: the visual vectors and the prompt placed by the
// backend bundle's prompt template (backend.prompt_template, as Pipeline does), so the encoder is
// trained on exactly the sequence `craft run` and `craft eval` later feed the backend.
import CraftCore
import CraftRuntimes
import CraftTraining
import TensorCore

/// A frozen ``SurrogateBackend`` as CRAFT's training surrogate, prompting it through its bundle's
/// ``PromptTemplate``.
///
/// CraftTraining's `LanguageBackendSurrogate` feeds `[visual, prompt, answer]` with no template; a
/// backend bundle declares a template (`"<image> question : {prompt} answer :"`) that `craft run`,
/// `craft eval` and ``Pipeline`` apply. Training through the same template keeps what the encoder is
/// trained for and what it is scored on identical.
public struct TemplatedSurrogate: TrainingSurrogate {
    /// The frozen backend.
    public let backend: any SurrogateBackend
    /// Where the visual vectors and the prompt go.
    public let template: PromptTemplate
    /// The most tokens generated for a validation answer.
    public var maximumAnswerTokens: Int
    /// Whether the backend computes logits only for the rows that predict the answer
    /// (``SurrogateBackend/answerLogits(for:)``, the default) or for every position of the prompt. The
    /// loss and gradients agree to float32 rounding; every row costs the output projection over the
    /// whole prompt, and is kept for reproducing runs made that way to the byte.
    public var scoresAnswerRowsOnly: Bool

    /// Wraps a backend and its template.
    public init(backend: any SurrogateBackend, template: PromptTemplate, maximumAnswerTokens: Int = 16, scoresAnswerRowsOnly: Bool = true) {
        self.backend = backend
        self.template = template
        self.maximumAnswerTokens = maximumAnswerTokens
        self.scoresAnswerRowsOnly = scoresAnswerRowsOnly
    }

    /// Text before the image, the visual vectors `[tokens, D]`, text after (empty texts dropped), as
    /// ``PromptTemplate/segments(visual:prompt:)`` places visual tokens.
    public func segments(visual: Tensor, prompt: String) -> [PromptSegment] {
        template.segments(image: .vectors(visual), prompt: prompt)
    }

    /// The logits of the templated prompt followed by the answer tokens and the backend's end-of-answer
    /// token (as the backend was trained: the answer, then `<eos>`); differentiable in `visual`.
    public func score(visual: Tensor, prompt: String, answer: String) throws -> AnswerSequence {
        try score(visual: [visual], prompts: [prompt], answers: [answer])[0]
    }

    /// Scores a micro-batch: in one call of the backend when only the answer's rows are scored
    /// (``SurrogateBackend/answerLogits(forBatch:)``), else one whole prompt at a time.
    public func score(visual: [Tensor], prompts: [String], answers: [String]) throws -> [AnswerSequence] {
        try checkBatch(visual, prompts, answers)
        return try AnswerSequence.scored(by: backend, prompts: visual.indices.map { segments(visual: visual[$0], prompt: prompts[$0]) },
                                         answers: answers, answerRowsOnly: scoresAnswerRowsOnly)
    }

    /// Greedy generation after the templated prompt.
    public func answer(visual: Tensor, prompt: String) throws -> String {
        try backend.generate(segments(visual: visual, prompt: prompt), options: GenerationOptions(maximumNewTokens: maximumAnswerTokens)).text
    }
}
