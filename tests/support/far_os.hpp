// Test support: an OS back end (the native one, or another test back end such as failing_os) whose every reservation
// lands far (64 GiB) from the address the heap asks for: out of reach of any direct jump, so every thunk takes the
// absolute form. Counts what it reserves and gives back. (A 32-bit address space has no "far": there it only counts.)
#pragma once

#include <member_thunk/detail/os/native.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace test
{
	template<class Base>
	struct far_from_code : Base
	{
		static inline std::size_t reserved = 0;
		static inline std::size_t released = 0;
		static inline std::vector<std::uintptr_t> wishes;

		static void reset() noexcept
		{
			reserved = released = 0;
			wishes.clear();
		}

		static member_thunk::detail::os::result reserve(std::size_t size, void* preferred, void*& out) noexcept
		{
			wishes.push_back(reinterpret_cast<std::uintptr_t>(preferred));
			constexpr auto far_away = static_cast<std::uintptr_t>(sizeof(void*) == 8 ? std::uint64_t{64} << 30 : 0);
			const auto at = reinterpret_cast<std::uintptr_t>(preferred) + far_away;
			const auto status = Base::reserve(size, reinterpret_cast<void*>(at - at % size), out);
			if (status.ok())
				++reserved;
			return status;
		}

		static member_thunk::detail::os::result unreserve(void* address, std::size_t size) noexcept
		{
			const auto status = Base::unreserve(address, size);
			if (status.ok())
				++released;
			return status;
		}
	};

	using far_os = far_from_code<member_thunk::detail::os::native>;
	static_assert(member_thunk::detail::os::backend<far_os>);
} // namespace test
