// member_thunk: where a heap reserves its regions. Near the code when the address space allows it, so that a thunk
// can reach its target with the encoder's direct jump (encoder::direct_reach); the choice between the direct and the
// absolute jump is then made per thunk, so a region out of reach is only slower, never wrong.
#pragma once

#include "arch/encoder.hpp"
#include "os/result.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace member_thunk::detail
{
	template<arch::encoder Encoder, os::backend Os>
	class near_code_placement
	{
	public:
		/// Reserves a region of Os::region_size() bytes, near the code when it can (below it first: above a program
		/// lies its break heap). A preferred address is only a wish: the OS places the reservation elsewhere if the
		/// range is taken, and then the next one is tried; the last reservation is kept wherever it is (its thunks use
		/// the absolute jump). Returns the OS failure if nothing could be reserved.
		[[nodiscard]] os::result reserve(std::byte*& out) noexcept
		{
			const std::size_t size = Os::region_size();
			const auto code = reinterpret_cast<std::uintptr_t>(&code_anchor);
			const auto aligned = [size](std::uintptr_t address) { return address - address % size; };
			const std::uintptr_t reach = capped_reach;
			std::array<std::uintptr_t, 4> wishes{};
			std::size_t count = 0;
			// A jump that reaches the whole address space (i386) makes every place near: no wish needed.
			if constexpr (!reaches_everywhere)
			{
				if (last_near_ > size && within_reach(last_near_ - size, size, code))
					wishes[count++] = last_near_ - size; // grow down from the last region placed near the code
				for (const std::uintptr_t below : {reach / 2, reach / 4, reach - reach / 4})
					if (code > below + size)
						wishes[count++] = aligned(code - below);
			}
			if (count == 0)
				wishes[count++] = 0; // nowhere to aim: anywhere
			for (std::size_t i = 0;; ++i)
			{
				void* base = nullptr;
				// An address computed from the code's; it is never dereferenced.
				void* const wish = reinterpret_cast<void*>(wishes[i]); // NOLINT(performance-no-int-to-ptr)
				if (auto status = Os::reserve(size, wish, base); !status.ok())
					return status;
				const auto at = reinterpret_cast<std::uintptr_t>(base);
				const bool in_reach = within_reach(at, size, code);
				if (in_reach)
					last_near_ = at;
				// A reservation out of reach that cannot be given back is kept rather than leaked.
				if (in_reach || i + 1 == count || !Os::unreserve(base, size).ok())
				{
					out = static_cast<std::byte*>(base);
					return os::result::success();
				}
			}
		}

	private:
		/// Whether the encoder's direct jump reaches every address (a 32-bit address space), and its reach capped at
		/// the largest address.
		static constexpr bool reaches_everywhere = Encoder::direct_reach > std::numeric_limits<std::uintptr_t>::max();
		static constexpr std::uintptr_t capped_reach = reaches_everywhere
		                                                   ? std::numeric_limits<std::uintptr_t>::max()
		                                                   : static_cast<std::uintptr_t>(Encoder::direct_reach);

		/// An address in the code that includes this heap, which is where the trampolines thunks jump to are.
		static void code_anchor() noexcept {}

		/// Whether every slot of [base, base + size) can reach `code` (and code near it) with a direct jump.
		[[nodiscard]] static bool within_reach(std::uintptr_t base, std::size_t size, std::uintptr_t code) noexcept
		{
			const auto distance = [code](std::uintptr_t at) { return at > code ? at - code : code - at; };
			return base + size > base && distance(base) <= Encoder::direct_reach &&
			       distance(base + size) <= Encoder::direct_reach;
		}

		std::uintptr_t last_near_ = 0; // base of the last region reserved within reach of the code
	};
} // namespace member_thunk::detail
