//! P's quantile domain for the 1D samplers: intervals of P-probability with full relative
//! precision in both tails. (Being implemented; see spec/channel.md.)
