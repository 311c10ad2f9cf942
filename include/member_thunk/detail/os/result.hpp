// member_thunk: what an OS back end returns, and the concept every back end satisfies.
#pragma once

#include <concepts>
#include <cstddef>
#include <system_error>

namespace member_thunk::detail::os
{
	/// Outcome of one OS call: success, or the OS error code and the name of the call that failed. Back ends never
	/// throw and never print; the layers above turn a failure into an exception or a fatal report.
	struct [[nodiscard]] result
	{
		std::error_code error{};
		const char* call = "";
		const char* hint = nullptr; // why the OS said no, when the error code alone would mislead

		[[nodiscard]] bool ok() const noexcept { return !error; }

		[[nodiscard]] static result success() noexcept { return {}; }
		[[nodiscard]] static result failure(std::error_code e, const char* failed_call,
		                                    const char* why = nullptr) noexcept
		{
			return {e, failed_call, why};
		}
	};

	/// The OS contract (one back end per OS family, a class of static functions). All sizes and addresses are
	/// multiples of page_size(); a reservation is region_size() bytes and aligned to it or to the OS granularity.
	///  - reserve(size, hint, out): address space, inaccessible, not executable, no memory committed; at `hint`
	///                    if that range is free, else anywhere (hint may be null).
	///  - commit:          pages become readable and writable (never executable).
	///  - make_executable: pages become readable and executable, never writable (PROT_BTI where the CPU has BTI).
	///  - flush_instruction_cache: after writing code, before running it.
	///  - set_call_targets(page, page_size, count, stride, valid): mark the entries at 0, stride, 2*stride, ...
	///                    (count of them) valid or invalid indirect-call targets (Windows CFG); elsewhere a no-op.
	///  - decommit:        pages become inaccessible and their memory is returned to the OS.
	///  - release:         the whole reservation is returned.
	template<class Os>
	concept backend = requires(void* address, void*& out, std::size_t size, bool valid)
	{
		{
			Os::page_size()
		}
		noexcept->std::same_as<std::size_t>;
		{
			Os::region_size()
		}
		noexcept->std::same_as<std::size_t>;
		{
			Os::reserve(size, address, out)
		}
		noexcept->std::same_as<result>;
		{
			Os::commit(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::make_executable(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::flush_instruction_cache(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::set_call_targets(address, size, size, size, valid)
		}
		noexcept->std::same_as<result>;
		{
			Os::decommit(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::release(address, size)
		}
		noexcept->std::same_as<result>;
	};
} // namespace member_thunk::detail::os
