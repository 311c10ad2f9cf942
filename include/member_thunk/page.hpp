// member_thunk: a page of thunks.
//
// A `page` owns one OS page taken from a heap. Thunks are written into it while it is read-write; mark_executable()
// seals it read-execute for good. Destroying the page revokes it at once: it stops being executable and is filled
// with traps (or decommitted), so a call through a dangling thunk faults instead of running stale code.
//
// Slots: code slots fill the page from the start (the first size() slots are thunk entries); the data of run-time
// member thunks (object pointer + member pointer) fills it from the end. Free slots hold traps.
#pragma once

#include "detail/arch/encoder.hpp"
#include "detail/callback.hpp"
#include "detail/config.hpp"
#include "detail/os_error.hpp"
#include "detail/page_kind.hpp"
#include "detail/region.hpp"
#include "exception.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

namespace member_thunk
{
	namespace detail
	{
		struct page_access;
	}

	/// Move-only owner of one page of thunks. Not thread-safe: use a page from one thread at a time. Once the page
	/// is executable, its thunks may be called from any thread without locks, until the page is destroyed.
	class page
	{
		using encoder = detail::arch::native_encoder;

	public:
		page(const page&) = delete;
		page& operator=(const page&) = delete;

		page(page&& other) noexcept :
		    region_(std::exchange(other.region_, nullptr)), address_(other.address_), slot_count_(other.slot_count_),
		    code_slots_(other.code_slots_), data_slots_(other.data_slots_), executable_(other.executable_)
		{
		}

		page& operator=(page&& other) noexcept
		{
			if (this != &other)
			{
				free();
				region_ = std::exchange(other.region_, nullptr);
				address_ = other.address_;
				slot_count_ = other.slot_count_;
				code_slots_ = other.code_slots_;
				data_slots_ = other.data_slots_;
				executable_ = other.executable_;
			}
			return *this;
		}

		/// Revokes the page: every thunk made on it stops being callable at once. Never throws.
		~page() { free(); }

		/// Makes a thunk that calls `(that->*fn)(args...)` when called as `Callback(first, args...)`; `first` is
		/// ignored. `fn` is any pointer to a member function of Class or of a base of Class (virtual members are
		/// dispatched at each call, like a direct call would). Takes one code slot plus data slots for `that` and
		/// `fn`. Precondition: `that` is not null and the page is not moved-from. Throws page_executable if the page
		/// was sealed, page_full if it lacks the slots.
		template<class Callback, class MemberFn, class Class>
		[[nodiscard]] Callback make_thunk(Class* that, MemberFn fn)
		{
			if constexpr (detail::check_member<Callback, Class, MemberFn>())
			{
				MEMBER_THUNK_EXPECTS(that != nullptr, "make_thunk() was given a null object pointer");
				MEMBER_THUNK_EXPECTS(fn != nullptr, "make_thunk() was given a null member function pointer");
				using block = detail::bound_member_block<Class, MemberFn>;
				static_assert(std::is_trivially_copyable_v<block> && alignof(block) <= encoder::slot_alignment);
				constexpr std::size_t data_slots = (sizeof(block) + encoder::slot_size - 1) / encoder::slot_size;
				check_writable(1 + data_slots);
				data_slots_ += data_slots;
				std::byte* const data = address_ + (slot_count_ - data_slots_) * encoder::slot_size;
				const block* const stored = std::construct_at(reinterpret_cast<block*>(data), block{that, fn});
				return emit<Callback>(stored, &trampolines<Callback>::template bound_member<block>::call);
			}
			else
				return no_thunk<Callback>();
		}

		/// Makes a thunk that calls `(that->*MemberFn)(args...)` when called as `Callback(first, args...)`; `first` is
		/// ignored. The member is known at compile time, so the thunk jumps to a compiled trampoline that is a tail
		/// jump to the member (or its inlined body). Takes one slot. Same preconditions and errors as above.
		template<class Callback, auto MemberFn, class Class>
		[[nodiscard]] Callback make_thunk(Class* that)
		{
			if constexpr (detail::check_member<Callback, Class, decltype(MemberFn)>())
			{
				// Not `MemberFn != nullptr`: GCC cannot evaluate that comparison at compile time under
				// -fsanitize=null (which implies -fno-delete-null-pointer-checks).
				static_assert(!detail::is_null_member<MemberFn>,
				              "member_thunk: MemberFn must not be a null member pointer");
				MEMBER_THUNK_EXPECTS(that != nullptr, "make_thunk() was given a null object pointer");
				check_writable(1);
				return emit<Callback>(that, &trampolines<Callback>::template member<Class, MemberFn>::call);
			}
			else
				return no_thunk<Callback>();
		}

		/// Makes a thunk that calls `callable(args...)` when called as `Callback(first, args...)`; `first` is
		/// ignored. The callable (a lambda with captures, a function object...) is referenced, not copied: it must
		/// outlive every call of the thunk. Takes one slot. Throws page_executable or page_full.
		template<class Callback, class Callable>
		[[nodiscard]] Callback make_thunk(Callable& callable)
		{
			if constexpr (detail::check_callable<Callback, Callable>())
			{
				check_writable(1);
				return emit<Callback>(std::addressof(callable),
				                      &trampolines<Callback>::template callable<Callable>::call);
			}
			else
				return no_thunk<Callback>();
		}

		/// A temporary callable would be gone before the thunk is called: this overload only explains the error.
		template<class Callback, class Callable>
		requires(!std::is_lvalue_reference_v<Callable>) Callback make_thunk([[maybe_unused]] Callable&& callable)
		{
			static_assert(std::is_pointer_v<std::remove_cvref_t<Callable>> || std::is_lvalue_reference_v<Callable>,
			              "member_thunk: the callable must outlive the thunk, which refers to it: pass a named object "
			              "(an lvalue), not a temporary");
			static_assert(!std::is_pointer_v<std::remove_cvref_t<Callable>>,
			              "member_thunk: pass the callable object itself (by reference), not a pointer to it; for a "
			              "member function use make_thunk<Callback>(object, &Class::member) or "
			              "make_thunk<Callback, &Class::member>(object)");
			return no_thunk<Callback>();
		}

		/// Seals the page: read-execute from now on, instruction cache flushed, thunk entries registered as call
		/// targets where the OS has such a list (Windows CFG). Thunks may be called only after this returns. Does
		/// nothing if the page is already executable. Throws os_error if the OS refuses; executable() then tells
		/// whether the page is still writable (it is, unless restoring it failed too).
		void mark_executable()
		{
			expect_valid();
			if (executable_)
				return;
			// A static step of the region's kind: it needs neither the heap nor its lock, and works whoever owns the
			// region by now (another thread's heap, the orphanage).
			const detail::seal_outcome outcome = region_->kind->seal(address_, region_->page_size, code_slots_);
			executable_ = outcome.sealed;
			if (!outcome.ok())
				detail::throw_os_error(outcome.doing, outcome.failure);
		}

		/// True when no slot is free. A page that is not full has room for a compile-time member or callable thunk
		/// (one slot); a run-time member thunk needs two (see free_slots()).
		[[nodiscard]] bool full() const noexcept { return free_slots() == 0; }

		/// The slots not yet taken: a compile-time member thunk or a callable thunk takes one, a run-time member
		/// thunk two (its code, and its object and member pointers).
		[[nodiscard]] std::size_t free_slots() const noexcept
		{
			expect_valid();
			return slot_count_ - code_slots_ - data_slots_;
		}

		/// True once mark_executable() has sealed the page.
		[[nodiscard]] bool executable() const noexcept
		{
			expect_valid();
			return executable_;
		}

		/// The number of thunks made on this page.
		[[nodiscard]] std::size_t size() const noexcept
		{
			expect_valid();
			return code_slots_;
		}

		/// The number of slots in this page: the most thunks it can hold (page size / slot size).
		[[nodiscard]] std::size_t capacity() const noexcept
		{
			expect_valid();
			return slot_count_;
		}

		/// The size in bytes of one slot (and so of the code of one thunk).
		[[nodiscard]] static constexpr std::size_t slot_size() noexcept { return encoder::slot_size; }

	private:
		friend struct detail::page_access;

		template<class Callback>
		using trampolines = detail::trampolines_for<Callback>;

		page(detail::region& r, std::byte* address) noexcept :
		    region_(&r), address_(address), slot_count_(r.page_size / r.kind->slot_size)
		{
		}

		// What an ill-formed make_thunk returns after its static_assert, so that no follow-on error hides the message.
		template<class Callback>
		static Callback no_thunk() noexcept
		{
			if constexpr (std::is_default_constructible_v<Callback>)
				return Callback{};
			else
				std::terminate();
		}

		void expect_valid() const noexcept
		{
			MEMBER_THUNK_EXPECTS(region_ != nullptr, "a moved-from member_thunk::page was used");
		}

		void check_writable(std::size_t slots) const
		{
			expect_valid();
			if (executable_)
				throw page_executable();
			if (free_slots() < slots)
				throw page_full();
		}

		// `target` has exactly the callback's signature with the first parameter made void*: that is what makes the
		// jump ABI-correct, so it is a parameter type, not a deduced one.
		template<class Callback>
		Callback emit(const volatile void* bound, typename detail::callback_traits<Callback>::target target) noexcept
		{
			std::byte* const slot = address_ + code_slots_ * encoder::slot_size;
			const auto slot_address = reinterpret_cast<std::uintptr_t>(slot);
			encoder::encode(std::span<std::byte, encoder::slot_size>(slot, encoder::slot_size),
			                reinterpret_cast<std::uintptr_t>(bound),
			                destination(reinterpret_cast<std::uintptr_t>(target), slot_address), slot_address);
			++code_slots_;
			return std::bit_cast<Callback>(slot);
		}

		/// Where the thunk in the slot at `slot_address` jumps to reach `trampoline`. A trampoline that is one tail
		/// jump (a compile-time member, usually) is skipped when the thunk reaches where that jump goes with a direct
		/// jump of its own: a direct jump needs no landing pad at its target. An indirect jump (the absolute form)
		/// always goes to the trampoline itself, whose address the program takes, so the compiler gave it its landing
		/// pad (endbr64, bti c); the function behind it may have none. Reads the trampoline's own instructions, which
		/// are code of this program (MEMBER_THUNK_FOLLOW_JUMPS 0 turns this off, for execute-only text).
		[[nodiscard]] static std::uint64_t destination(std::uint64_t trampoline, std::uint64_t slot_address) noexcept
		{
#if MEMBER_THUNK_FOLLOW_JUMPS
			const std::uint64_t followed = detail::arch::follow_jumps<encoder>(trampoline, [](std::uint64_t address) {
				// The address of an instruction of the trampoline, decoded from its own jumps: it fits a pointer.
				const auto at = static_cast<std::uintptr_t>(address);
				return *reinterpret_cast<const volatile std::byte*>(at); // NOLINT(performance-no-int-to-ptr)
			});
			if (encoder::reaches_directly(slot_address, followed))
				return followed;
#else
			static_cast<void>(slot_address);
#endif
			return trampoline;
		}

		/// Gives the page back to its heap, which revokes it (every thunk made on it stops being callable at once).
		void free() noexcept
		{
			if (region_ != nullptr)
			{
				detail::region& r = *std::exchange(region_, nullptr);
				r.owner.load(std::memory_order_acquire)->free_page(r, address_, executable_ ? code_slots_ : 0);
			}
		}

		detail::region* region_;
		std::byte* address_;
		std::size_t slot_count_;
		std::size_t code_slots_ = 0;
		std::size_t data_slots_ = 0;
		bool executable_ = false;
	};

	namespace detail
	{
		/// Lets the heap layer create page handles; nobody else can.
		struct page_access
		{
			[[nodiscard]] static page make(region& r, std::byte* address) noexcept { return {r, address}; }

			/// The region holding a page (for validity tests).
			[[nodiscard]] static region* region_of(const page& p) noexcept { return p.region_; }
		};
	} // namespace detail
} // namespace member_thunk
