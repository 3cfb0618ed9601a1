"""Support shared by the test tiers and the benchmarks: in-memory fakes for the unit tier, people and worlds on a
running stack for the others."""
