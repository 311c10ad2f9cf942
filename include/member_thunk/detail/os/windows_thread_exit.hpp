// member_thunk: code run at the exit of each Windows thread, after the thread's C++ thread_local destructors.
//
// A windows_thread_exit_slot is a Win32 TLS slot (TlsAlloc: one value per thread, shared by all of the thread's
// fibers) whose value is handed to the slot's exit function when the thread ends. The hand-over is a PE TLS callback
// of the image that includes this header, which the loader calls with DLL_THREAD_DETACH in every thread that ends
// (ExitThread or a return from the thread function; TerminateThread runs nothing).
//
// Why not the alternatives (measured with mingw-w64 GCC 12, winpthreads and wine 8):
//  - a thread_local object: with MinGW's emulated TLS its storage may be freed before its destructor runs (GCC bug
//    80816), which then writes into freed memory;
//  - a fiber-local storage callback (FlsAlloc): it runs when a fiber is deleted, not only when the thread ends, so a
//    per-thread object made on a fiber died with that fiber; it runs before the C++ thread_local destructors of a
//    thread started with CreateThread; and a DLL unloaded without FlsFree left a callback into unmapped code.
// The order at a thread's exit, seen under wine: for a std::thread, the thread_local destructors and winpthreads' key
// destructors run before the thread function returns, then the FLS callbacks, then the PE TLS callbacks; for a
// CreateThread thread, the FLS callbacks first, then the PE TLS callbacks in section-name order: winpthreads' at
// .CRT$XLF (its key destructors, which run libstdc++'s thread_local destructors), then this one at
// .CRT$XLY_member_thunk. Either way this runs after the C++ thread_local destructors (MSVC's CRT runs them from
// .CRT$XLD, by its sources: not tested here), so a thread_local object that frees or allocates pages still finds the
// thread's heap.
//
// After a slot's value was handed over, the slot holds retired() for the rest of the thread's exit, also in slots
// the thread never used: code that runs later (another image's TLS callback or DllMain) then gets no new object
// that nobody would destroy, and can tell.
//
// At DLL_PROCESS_DETACH (FreeLibrary of the image, or the end of the process: under wine a TLS callback cannot tell
// which, its reserved argument is null in both) the slots are freed (TlsFree) and read as retired() from then on.
// The objects of the threads still running, the calling one too, are left alone: at the end of the process
// ExitProcess has killed the other threads, and destroying an object could wait forever on a lock one of them held.
// After an unload no callback of the image is left to run.
#pragma once

#include "result.hpp"

#include <atomic>
#include <new>
#include <system_error>
#include <type_traits>

#include "windows_sdk.hpp"

namespace member_thunk::detail::os
{
	class windows_thread_exit_slot
	{
	public:
		/// Takes the value that the ending thread left in the slot (never null, never retired()).
		using exit_function = void (*)(void* value) noexcept;

		/// Allocates the TLS slot; a failure is reported by every get(). Never destroyed: make it a static object
		/// (function-local, so that it exists before its first use), which the thread-exit callback then finds.
		explicit windows_thread_exit_slot(exit_function on_exit) noexcept :
		    index_(::TlsAlloc()), allocated_(index_ != TLS_OUT_OF_INDEXES),
		    alloc_error_(allocated_ ? 0 : ::GetLastError()), on_exit_(on_exit)
		{
			if (!allocated_)
				return;
			next_ = first().load(std::memory_order_relaxed);
			while (!first().compare_exchange_weak(next_, this, std::memory_order_release, std::memory_order_relaxed))
			{
			}
		}

		windows_thread_exit_slot(const windows_thread_exit_slot&) = delete;
		windows_thread_exit_slot& operator=(const windows_thread_exit_slot&) = delete;
		windows_thread_exit_slot(windows_thread_exit_slot&&) = delete;
		windows_thread_exit_slot& operator=(windows_thread_exit_slot&&) = delete;
		~windows_thread_exit_slot() = default;

		/// The calling thread's value: null until set, retired() once it was handed to the exit function (or the
		/// slot was freed at DLL_PROCESS_DETACH). Fails only if TlsAlloc failed.
		result get(void*& value) noexcept
		{
			if (!allocated_)
				return failure("TlsAlloc", alloc_error_);
			const DWORD index = index_.load(std::memory_order_acquire);
			value = index == TLS_OUT_OF_INDEXES ? retired() : ::TlsGetValue(index);
			return result::success();
		}

		/// Sets the calling thread's value (not retired(): only the thread-exit callback retires a slot).
		result set(void* value) noexcept
		{
			const DWORD index = index_.load(std::memory_order_acquire);
			if (index == TLS_OUT_OF_INDEXES)
				return failure("TlsSetValue", ERROR_INVALID_PARAMETER);
			if (::TlsSetValue(index, value) == 0)
				return failure("TlsSetValue", ::GetLastError());
			return result::success();
		}

		/// The value of a slot whose thread has ended it: the slot's own address, which no object can share.
		[[nodiscard]] void* retired() noexcept { return this; }

		/// The PE TLS callback (see the top of this file).
		static void NTAPI on_tls_callback([[maybe_unused]] void* module, DWORD reason,
		                                  [[maybe_unused]] void* reserved) noexcept
		{
			if (reason == DLL_THREAD_DETACH)
				end_thread();
			else if (reason == DLL_PROCESS_DETACH)
				free_all();
		}

	private:
		/// Retires every slot of the calling thread and hands each value to its exit function. An exit function may
		/// make an object of a slot registered meanwhile (its first use in the process): passes repeat until one
		/// hands nothing over. A retired slot is never handed over again, so this ends.
		static void end_thread() noexcept
		{
			for (bool handed_over = true; handed_over;)
			{
				handed_over = false;
				for (windows_thread_exit_slot* s = first().load(std::memory_order_acquire); s != nullptr; s = s->next_)
				{
					const DWORD index = s->index_.load(std::memory_order_acquire);
					if (index == TLS_OUT_OF_INDEXES)
						continue;
					void* const value = ::TlsGetValue(index);
					if (value == s->retired())
						continue;
					static_cast<void>(::TlsSetValue(index, s->retired()));
					if (value != nullptr)
					{
						s->on_exit_(value);
						handed_over = true;
					}
				}
			}
		}

		static void free_all() noexcept
		{
			for (windows_thread_exit_slot* s = first().load(std::memory_order_acquire); s != nullptr; s = s->next_)
			{
				const DWORD index = s->index_.exchange(TLS_OUT_OF_INDEXES, std::memory_order_acq_rel);
				if (index != TLS_OUT_OF_INDEXES)
					static_cast<void>(::TlsFree(index));
			}
		}

		/// The slots of this image (an inline function's static: one list per executable or DLL, as the callback).
		[[nodiscard]] static std::atomic<windows_thread_exit_slot*>& first() noexcept
		{
			static std::atomic<windows_thread_exit_slot*> head{nullptr};
			return head;
		}

		[[nodiscard]] static result failure(const char* call, DWORD error) noexcept
		{
			return result::failure(std::error_code(static_cast<int>(error), std::system_category()), call);
		}

		std::atomic<DWORD> index_;
		bool allocated_;
		DWORD alloc_error_;
		exit_function on_exit_;
		windows_thread_exit_slot* next_ = nullptr;
	};

	/// One T per thread, made by the thread's first get() and destroyed when the thread ends, after its C++
	/// thread_local objects (see the top of this file).
	template<class T>
	class windows_per_thread
	{
	public:
		/// `out` = the calling thread's T, made now if it has none; null once the thread's T was destroyed (code that
		/// runs late in the thread's exit, or after the image's DLL_PROCESS_DETACH). Fails if TlsAlloc failed or
		/// memory ran out (`out` unchanged).
		static result get(T*& out) noexcept
		{
			static_assert(std::is_nothrow_default_constructible_v<T>,
			              "a per-thread object is made where nothing may throw");
			windows_thread_exit_slot& s = slot();
			void* value = nullptr;
			if (const result status = s.get(value); !status.ok())
				return status;
			if (value == s.retired())
			{
				out = nullptr;
				return result::success();
			}
			if (value == nullptr)
			{
				// The storage is set before the T is made there (which cannot fail): a failure leaves nothing to
				// destroy.
				void* const storage = ::operator new (sizeof(T), std::align_val_t{alignof(T)}, std::nothrow);
				if (storage == nullptr)
					return result::failure(std::error_code(ERROR_NOT_ENOUGH_MEMORY, std::system_category()),
					                       "operator new (a per-thread object)");
				if (const result status = s.set(storage); !status.ok())
				{
					::operator delete (storage, std::align_val_t{alignof(T)});
					return status;
				}
				value = ::new (storage) T();
			}
			out = static_cast<T*>(value);
			return result::success();
		}

	private:
		[[nodiscard]] static windows_thread_exit_slot& slot() noexcept
		{
			static windows_thread_exit_slot the(&destroy);
			return the;
		}

		static void destroy(void* object) noexcept
		{
			static_cast<T*>(object)->~T();
			::operator delete (object, std::align_val_t{alignof(T)});
		}
	};
} // namespace member_thunk::detail::os

// The PE TLS callback: a pointer in a .CRT$XL? section, which the linker sorts by name between the CRT's .CRT$XLA and
// .CRT$XLZ markers into the TLS directory's callback array (_tls_used, which the CRT provides). Every translation
// unit that includes this header emits a link-once (COMDAT) copy, and the linker keeps one. The section is named for
// member_thunk: GNU ld folds link-once sections by section name, so in a plain .CRT$XLY it kept one of ours and
// another library's link-once callback and dropped the other (with only a warning). Letter Y: after winpthreads'
// .CRT$XLF and the CRTs' .CRT$XLB-XLD.
extern "C"
{
#if defined(_MSC_VER)
	// Not built by any test here (MSVC is an untested target): the usual MSVC spelling of the same thing.
#pragma section(".CRT$XLY_member_thunk", long, read)
#pragma comment(linker, "/INCLUDE:_tls_used")
#pragma comment(linker, "/INCLUDE:member_thunk_thread_exit_callback")
	__declspec(allocate(".CRT$XLY_member_thunk")) inline const PIMAGE_TLS_CALLBACK member_thunk_thread_exit_callback =
	    &member_thunk::detail::os::windows_thread_exit_slot::on_tls_callback;
#else
	inline const PIMAGE_TLS_CALLBACK member_thunk_thread_exit_callback
	    __attribute__((section(".CRT$XLY_member_thunk"), used)) =
	        &member_thunk::detail::os::windows_thread_exit_slot::on_tls_callback;
#endif
}
