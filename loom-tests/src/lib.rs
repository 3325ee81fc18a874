//! Empty: the models are in tests/, built with `--cfg loom` (`make test-loom`).
