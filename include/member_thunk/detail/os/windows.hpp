// member_thunk: the Windows OS back end. Regions are reserved executable-but-with-no-valid-targets so that Control
// Flow Guard has a bitmap for them, pages are committed read-write, sealed read-execute without touching that
// bitmap, and each thunk entry (only entries: not the rest of a closure's code) is then marked a valid call target
// when the process enforces CFG (ABI doc, "Windows CFG").
#pragma once

#include "result.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>

#include "windows_sdk.hpp"

namespace member_thunk::detail::os
{
	struct windows
	{
		[[nodiscard]] static std::size_t page_size() noexcept { return info().page; }

		/// One allocation-granularity unit (64 KiB on every current Windows), the smallest reservation Windows makes.
		[[nodiscard]] static std::size_t region_size() noexcept { return info().granularity; }

		/// Reserves address space, at `preferred` if that range is free, else anywhere (VirtualAlloc takes an address
		/// as a demand, so a refused one is retried without it).
		static result reserve(std::size_t size, void* preferred, void*& out) noexcept
		{
			constexpr DWORD protection = PAGE_EXECUTE_READ | PAGE_TARGETS_INVALID;
			void* address = preferred != nullptr ? ::VirtualAlloc(preferred, size, MEM_RESERVE, protection) : nullptr;
			if (address == nullptr)
				address = ::VirtualAlloc(nullptr, size, MEM_RESERVE, protection);
			if (address == nullptr)
				return last_error("VirtualAlloc(MEM_RESERVE, PAGE_EXECUTE_READ|PAGE_TARGETS_INVALID)");
			out = address;
			return result::success();
		}

		static result make_writable(void* address, std::size_t size) noexcept
		{
			if (::VirtualAlloc(address, size, MEM_COMMIT, PAGE_READWRITE) == nullptr)
				return last_error("VirtualAlloc(MEM_COMMIT, PAGE_READWRITE)");
			return result::success();
		}

		static result make_executable(void* address, std::size_t size) noexcept
		{
			DWORD previous = 0;
			if (::VirtualProtect(address, size, PAGE_EXECUTE_READ | PAGE_TARGETS_NO_UPDATE, &previous) != 0)
				return result::success();
			return exec_refusal("VirtualProtect(PAGE_EXECUTE_READ|PAGE_TARGETS_NO_UPDATE)");
		}

		static result protect(void* address, std::size_t size, access a) noexcept
		{
			DWORD previous = 0;
			switch (a)
			{
			case access::none:
				if (::VirtualProtect(address, size, PAGE_NOACCESS, &previous) == 0)
					return last_error("VirtualProtect(PAGE_NOACCESS)");
				break;
			case access::read:
				if (::VirtualProtect(address, size, PAGE_READONLY, &previous) == 0)
					return last_error("VirtualProtect(PAGE_READONLY)");
				break;
			case access::read_write:
				if (::VirtualProtect(address, size, PAGE_READWRITE, &previous) == 0)
					return last_error("VirtualProtect(PAGE_READWRITE)");
				break;
			}
			return result::success();
		}

		/// Commits the pages read-execute, then decommits them: they never hold anything and are never writable.
		static result probe_executable(void* address, std::size_t size) noexcept
		{
			if (::VirtualAlloc(address, size, MEM_COMMIT, PAGE_EXECUTE_READ | PAGE_TARGETS_INVALID) == nullptr)
				return exec_refusal("VirtualAlloc(MEM_COMMIT, PAGE_EXECUTE_READ|PAGE_TARGETS_INVALID)");
			return decommit(address, size);
		}

		/// Windows maps a second view of a program's code only through the image loader (SEC_IMAGE), which this
		/// library does not use: prebuilt stubs come from a copy sealed read-execute, or from the image pool.
		static result map_image_code([[maybe_unused]] void* at, [[maybe_unused]] std::size_t size,
		                             [[maybe_unused]] const void* code) noexcept
		{
			return result::failure(std::error_code(ERROR_NOT_SUPPORTED, std::system_category()), "MapViewOfFile",
			                       "Windows cannot map the program's code again outside the image loader");
		}

		static result map_sealed_copy([[maybe_unused]] void* at, [[maybe_unused]] std::size_t size,
		                              [[maybe_unused]] const void* code) noexcept
		{
			return result::failure(std::error_code(ERROR_NOT_SUPPORTED, std::system_category()), "CreateFileMapping",
			                       "Windows has no sealed in-memory files");
		}

		static result flush_instruction_cache(void* address, std::size_t size) noexcept
		{
			if (::FlushInstructionCache(::GetCurrentProcess(), address, size) == 0)
				return last_error("FlushInstructionCache");
			return result::success();
		}

		/// Marks the entries of the code at `code` (the set bits of `entries`, slots `stride` bytes apart: see
		/// backend) valid or invalid indirect-call targets, when the process enforces CFG; otherwise there is no bitmap
		/// to update.
		static result set_call_targets(void* code, std::size_t size, std::span<const std::uint64_t> entries,
		                               std::size_t stride, bool valid) noexcept
		{
			if (!cfg_enforced())
				return result::success();
			return set_call_targets_with(cfg_api(), code, size, entries, stride, valid);
		}

		using set_valid_call_targets_fn = BOOL(WINAPI*)(HANDLE, PVOID, SIZE_T, ULONG, PCFG_CALL_TARGET_INFO);

		/// set_call_targets once CFG is known to be enforced, through `set_targets` (SetProcessValidCallTargets, or
		/// null when the system lacks it, which is an error then: thunks could not be called).
		static result set_call_targets_with(set_valid_call_targets_fn set_targets, void* code, std::size_t size,
		                                    std::span<const std::uint64_t> entries, std::size_t stride,
		                                    bool valid) noexcept
		{
			std::size_t first = 0;
			if (!entry_offsets(entries, stride, size).next(first))
				return result::success();
			if (set_targets == nullptr)
				return result::failure(std::error_code(ERROR_PROC_NOT_FOUND, std::system_category()),
				                       "GetProcAddress(SetProcessValidCallTargets)",
				                       "the process enforces Control Flow Guard but the system does not export "
				                       "SetProcessValidCallTargets");
			constexpr std::size_t all = ~std::size_t{0};
			std::size_t done = 0;
			const result status = set_call_target_batches(set_targets, code, size, entries, stride, valid, all, done);
			// Marking valid failed part-way: the batches already marked would stay valid after the page is revoked
			// (its owner believes it was never sealed, so it withdraws nothing). Withdraw exactly those here, best
			// effort: the failure is what the caller hears about either way.
			if (!status.ok() && valid && done != 0)
			{
				std::size_t withdrawn = 0;
				static_cast<void>(
				    set_call_target_batches(set_targets, code, size, entries, stride, false, done, withdrawn));
			}
			return status;
		}

		static result decommit(void* address, std::size_t size) noexcept
		{
			if (::VirtualFree(address, size, MEM_DECOMMIT) == 0)
				return last_error("VirtualFree(MEM_DECOMMIT)");
			return result::success();
		}

		static result unreserve(void* address, [[maybe_unused]] std::size_t size) noexcept
		{
			if (::VirtualFree(address, 0, MEM_RELEASE) == 0)
				return last_error("VirtualFree(MEM_RELEASE)");
			return result::success();
		}

		/// True when the process enforces Control Flow Guard, so thunk entries must be registered.
		[[nodiscard]] static bool cfg_enforced() noexcept
		{
			static const bool enforced = [] {
				// Zeroed first: some implementations report success without writing the buffer.
				PROCESS_MITIGATION_CONTROL_FLOW_GUARD_POLICY policy;
				std::memset(&policy, 0, sizeof policy);
				return ::GetProcessMitigationPolicy(::GetCurrentProcess(), ProcessControlFlowGuardPolicy, &policy,
				                                    sizeof policy) != 0 &&
				       policy.EnableControlFlowGuard != 0;
			}();
			return enforced;
		}

	private:
		/// Marks the first `limit` entries in batches of at most 64 (offsets ascending and 16-byte aligned, as the API
		/// requires; entries are slots at least that aligned); `done` counts the entries of the batches that succeeded.
		static result set_call_target_batches(set_valid_call_targets_fn set_targets, void* code, std::size_t size,
		                                      std::span<const std::uint64_t> entries, std::size_t stride, bool valid,
		                                      std::size_t limit, std::size_t& done) noexcept
		{
			constexpr std::size_t batch = 64;
			const ULONG_PTR flags = valid ? static_cast<ULONG_PTR>(CFG_CALL_TARGET_VALID) : 0;
			CFG_CALL_TARGET_INFO targets[batch]{};
			entry_offsets offsets(entries, stride, size);
			std::size_t offset = 0;
			for (done = 0; done < limit && offsets.next(offset);)
			{
				std::size_t n = 0;
				targets[n++] = {offset, flags};
				while (n < batch && done + n < limit && offsets.next(offset))
					targets[n++] = {offset, flags};
				if (set_targets(::GetCurrentProcess(), code, size, static_cast<ULONG>(n), targets) == 0)
					return last_error("SetProcessValidCallTargets");
				done += n;
			}
			return result::success();
		}

		struct system_info
		{
			std::size_t page;
			std::size_t granularity;
		};

		[[nodiscard]] static const system_info& info() noexcept
		{
			static const system_info value = [] {
				SYSTEM_INFO si;
				::GetSystemInfo(&si);
				return system_info{si.dwPageSize, si.dwAllocationGranularity};
			}();
			return value;
		}

		// Resolved at run time: the function lives in an api-set DLL that some Windows-compatible systems lack,
		// and a static import of a missing export would fail at load or on first call.
		[[nodiscard]] static set_valid_call_targets_fn cfg_api() noexcept
		{
			static const set_valid_call_targets_fn fn = [] {
				HMODULE module = ::GetModuleHandleW(L"api-ms-win-core-memory-l1-1-3.dll");
				if (module == nullptr)
					module = ::LoadLibraryW(L"api-ms-win-core-memory-l1-1-3.dll");
				if (module == nullptr)
					module = ::GetModuleHandleW(L"kernelbase.dll");
				return module == nullptr ? nullptr
				                         : reinterpret_cast<set_valid_call_targets_fn>(reinterpret_cast<void*>(
				                               ::GetProcAddress(module, "SetProcessValidCallTargets")));
			}();
			return fn;
		}

		/// A refusal to make memory executable: ERROR_DYNAMIC_CODE_BLOCKED means Arbitrary Code Guard said no.
		static result exec_refusal(const char* call) noexcept
		{
			constexpr DWORD dynamic_code_blocked = 1655; // ERROR_DYNAMIC_CODE_BLOCKED, missing from older SDKs
			const DWORD error = ::GetLastError();
			const std::error_code code(static_cast<int>(error), std::system_category());
			if (error == dynamic_code_blocked)
				return result::refused_by_policy(code, call,
				                                 "the process forbids dynamic code (Arbitrary Code Guard is in force)");
			return result::failure(code, call);
		}

		/// The failure of `call`, with the thread's last-error code (a failure even if that code is 0: see result).
		static result last_error(const char* call) noexcept
		{
			return result::failure(std::error_code(static_cast<int>(::GetLastError()), std::system_category()), call);
		}
	};

	static_assert(backend<windows>);
} // namespace member_thunk::detail::os
