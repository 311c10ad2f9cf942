// member_thunk: what a thunk encoder provides, and the one that fits the machine being compiled for.
#pragma once

#include "../config.hpp"
#include "aarch64.hpp"
#include "x86_32.hpp"
#include "x86_64.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace member_thunk::detail::arch
{
	/// An encoder writes one thunk into a fixed-size slot and fills unused code with traps. It is a pure function of
	/// its inputs (constexpr, no OS, no host assumptions). It also states which results its ABI returns in registers
	/// (`returns_in_registers<R>`, results.hpp): the others come back through a hidden pointer that may take the
	/// first argument's place.
	template<class E>
	concept encoder = requires(std::span<std::byte, E::slot_size> slot, std::span<std::byte> code, std::uint64_t value)
	{
		{
			E::slot_size
			} -> std::convertible_to<std::size_t>;
		{
			E::slot_alignment
			} -> std::convertible_to<std::size_t>;
		{
			E::trap_granule
			} -> std::convertible_to<std::size_t>;
		{
			E::direct_reach
			} -> std::convertible_to<std::uint64_t>;
		E::encode(slot, value, value, value);
		E::fill_traps(code);
		{
			E::reaches_directly(value, value)
			} -> std::same_as<bool>;
		{
			E::jump_destination(value, [](std::uint64_t) { return std::byte{}; })
			} -> std::same_as<std::uint64_t>;
		{
			E::template returns_in_registers<int>
			} -> std::convertible_to<bool>;
	}
	&&(E::slot_size % E::trap_granule == 0) && (E::slot_alignment >= 16);

	static_assert(encoder<x86_64_sysv_encoder>);
	static_assert(encoder<x86_64_win64_encoder>);
	static_assert(encoder<aarch64_encoder>);
	static_assert(encoder<x86_32_encoder>);

	/// Where a call to `address` really ends up: direct jumps at the start of the code are followed (at most
	/// `max_hops` of them: compiled trampolines that are a single tail jump, incremental-linking stubs). A thunk
	/// aimed at the result skips those jumps and behaves the same, since a jump changes no register and no stack.
	template<encoder E, class Read>
	[[nodiscard]] constexpr std::uint64_t follow_jumps(std::uint64_t address, Read read) noexcept
	{
		constexpr int max_hops = 4;
		for (int hop = 0; hop < max_hops; ++hop)
		{
			const std::uint64_t next = E::jump_destination(address, read);
			if (next == address)
				break;
			address = next;
		}
		return address;
	}

#if defined(MEMBER_THUNK_ARCH_X86_64) && defined(MEMBER_THUNK_OS_WINDOWS)
	using native_encoder = x86_64_win64_encoder;
#elif defined(MEMBER_THUNK_ARCH_X86_64)
	using native_encoder = x86_64_sysv_encoder;
#elif defined(MEMBER_THUNK_ARCH_AARCH64)
	using native_encoder = aarch64_encoder;
#elif defined(MEMBER_THUNK_ARCH_X86_32)
	using native_encoder = x86_32_encoder;
#endif
} // namespace member_thunk::detail::arch
