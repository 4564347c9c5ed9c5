// SPDX-License-Identifier: Apache-2.0
//! KVM (arm64) edge of the RAS engine (being written).
