// Test support: an OS back end that behaves like the native one but fails chosen calls on demand, to test that
// every OS failure is reported as documented and leaves no leak and no broken invariant.
#pragma once

#include <member_thunk/detail/os/native.hpp>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

namespace test
{
	enum class os_call : std::size_t
	{
		reserve,
		make_writable,
		make_executable,
		flush_instruction_cache,
		set_call_targets,
		decommit,
		unreserve,
		protect,
		probe_executable,
		map_image_code,
		map_sealed_copy,
		count
	};

	/// The name failing_os gives each call in its failures ("injected <name>").
	[[nodiscard]] inline const char* call_name(os_call c) noexcept
	{
		constexpr const char* names[] = {"reserve",          "make_writable",  "make_executable", "flush",
		                                 "set_call_targets", "decommit",       "unreserve",       "protect",
		                                 "probe_executable", "map_image_code", "map_sealed_copy"};
		static_assert(std::size(names) == static_cast<std::size_t>(os_call::count));
		return c < os_call::count ? names[static_cast<std::size_t>(c)] : "?";
	}

	/// Which calls fail. fail_in[c] == n > 0: the n-th next call of c fails (then c succeeds again); 0: never.
	/// fail_always[c]: every call of c fails. calls[c] counts every call of c (failed or not).
	struct os_faults
	{
		static inline std::array<int, static_cast<std::size_t>(os_call::count)> fail_in{};
		static inline std::array<bool, static_cast<std::size_t>(os_call::count)> fail_always{};
		static inline std::array<std::size_t, static_cast<std::size_t>(os_call::count)> calls{};
		static inline int error = ENOMEM;
		/// When set, every attempt to make memory executable (make_executable, probe_executable) is refused as a W^X
		/// policy refuses it (EACCES, a policy refusal), like prctl(PR_SET_MDWE). As under that policy, a new
		/// read-execute mapping of a file (map_image_code, map_sealed_copy) is still allowed: fail those with
		/// fail_every() to close them too.
		static inline bool refuse_execution = false;
		/// Every reservation made and not yet released (address -> size): the leak oracle. A process-wide mapping
		/// count would also see the mappings of sanitizer runtimes and allocators; this sees only the heap's.
		static inline std::map<std::uintptr_t, std::size_t> reservations;

		/// The set_call_targets calls that reached the back end (every OS: the native one then ignores them where
		/// no OS keeps a list of call targets), each with the offsets of the entries it marks, ascending.
		struct call_targets_call
		{
			void* page = nullptr;
			std::vector<std::size_t> offsets;
			bool valid = false;
		};
		static inline std::vector<call_targets_call> call_target_calls;

		/// Resets the faults and counters; reservations stay, they belong to the heaps still alive.
		static void reset() noexcept
		{
			fail_in = {};
			fail_always = {};
			calls = {};
			error = ENOMEM;
			refuse_execution = false;
			call_target_calls.clear();
		}

		static void fail_next(os_call c, int nth = 1) noexcept { fail_in[static_cast<std::size_t>(c)] = nth; }
		static void fail_every(os_call c, bool on = true) noexcept { fail_always[static_cast<std::size_t>(c)] = on; }
		[[nodiscard]] static std::size_t count(os_call c) noexcept { return calls[static_cast<std::size_t>(c)]; }

		[[nodiscard]] static bool should_fail(os_call c) noexcept
		{
			const auto i = static_cast<std::size_t>(c);
			++calls[i];
			if (fail_always[i])
				return true;
			if (fail_in[i] > 0 && --fail_in[i] == 0)
				return true;
			return false;
		}
	};

	struct failing_os
	{
		using native = member_thunk::detail::os::native;
		using result = member_thunk::detail::os::result;

		static std::size_t page_size() noexcept { return native::page_size(); }
		static std::size_t region_size() noexcept { return native::region_size(); }

		static result reserve(std::size_t size, void* preferred, void*& out) noexcept
		{
			if (os_faults::should_fail(os_call::reserve))
				return injected("injected reserve");
			const auto status = native::reserve(size, preferred, out);
			if (status.ok())
				os_faults::reservations.emplace(reinterpret_cast<std::uintptr_t>(out), size);
			return status;
		}
		static result make_writable(void* p, std::size_t n) noexcept
		{
			return os_faults::should_fail(os_call::make_writable) ? injected("injected make_writable")
			                                                      : native::make_writable(p, n);
		}
		static result make_executable(void* p, std::size_t n) noexcept
		{
			if (os_faults::should_fail(os_call::make_executable))
				return injected("injected make_executable");
			return os_faults::refuse_execution ? refused("injected make_executable") : native::make_executable(p, n);
		}
		static result protect(void* p, std::size_t n, member_thunk::detail::os::access a) noexcept
		{
			return os_faults::should_fail(os_call::protect) ? injected("injected protect") : native::protect(p, n, a);
		}
		static result probe_executable(void* p, std::size_t n) noexcept
		{
			if (os_faults::should_fail(os_call::probe_executable))
				return injected("injected probe_executable");
			return os_faults::refuse_execution ? refused("injected probe_executable") : native::probe_executable(p, n);
		}
		static result map_image_code(void* at, std::size_t n, const void* code) noexcept
		{
			if (os_faults::should_fail(os_call::map_image_code))
				return injected("injected map_image_code");
			return native::map_image_code(at, n, code);
		}
		static result map_sealed_copy(void* at, std::size_t n, const void* code) noexcept
		{
			if (os_faults::should_fail(os_call::map_sealed_copy))
				return injected("injected map_sealed_copy");
			return native::map_sealed_copy(at, n, code);
		}
		static result flush_instruction_cache(void* p, std::size_t n) noexcept
		{
			return os_faults::should_fail(os_call::flush_instruction_cache) ? injected("injected flush")
			                                                                : native::flush_instruction_cache(p, n);
		}
		static result set_call_targets(void* p, std::size_t n, std::span<const std::uint64_t> entries,
		                               std::size_t stride, bool valid) noexcept
		{
			if (os_faults::should_fail(os_call::set_call_targets))
				return injected("injected set_call_targets");
			os_faults::call_targets_call call{p, {}, valid};
			member_thunk::detail::os::entry_offsets offsets(entries, stride, n);
			for (std::size_t offset = 0; offsets.next(offset);)
				call.offsets.push_back(offset);
			os_faults::call_target_calls.push_back(std::move(call));
			return native::set_call_targets(p, n, entries, stride, valid);
		}
		static result decommit(void* p, std::size_t n) noexcept
		{
			return os_faults::should_fail(os_call::decommit) ? injected("injected decommit") : native::decommit(p, n);
		}
		static result unreserve(void* p, std::size_t n) noexcept
		{
			if (os_faults::should_fail(os_call::unreserve))
				return injected("injected unreserve");
			const auto status = native::unreserve(p, n);
			if (status.ok())
				os_faults::reservations.erase(reinterpret_cast<std::uintptr_t>(p));
			return status;
		}

	private:
		static result injected(const char* call) noexcept
		{
			return result::failure(std::error_code(os_faults::error, std::system_category()), call);
		}
		static result refused(const char* call) noexcept
		{
			return result::refused_by_policy(std::error_code(EACCES, std::system_category()), call,
			                                 "an injected W^X policy forbids making memory executable");
		}
	};

	static_assert(member_thunk::detail::os::backend<failing_os>);
} // namespace test
