// member_thunk: a page of thunks.
//
// A `page` owns one OS page taken from a heap, of one of two kinds (detail/region_kind.hpp):
//   run-time code   thunks are machine code written into the page while it is read-write; mark_executable() seals
//                   it read-execute for good (the fastest thunks: a direct jump to the target);
//   prebuilt stubs  thunks are fixed stubs whose data slots {bound, target} fill the page; mark_executable() seals
//                   the data read-only (used where the OS forbids run-time code, detail/prebuilt_regions.hpp).
// Either way, destroying the page revokes it at once: nothing in it can be called any more, and a call through a
// dangling thunk faults instead of running stale code.
//
// Slots: thunks take slots from the start of the page (the first size() slots that may hold thunks hold their code,
// one slot each or two for some closures, or their data slots); the data of run-time member thunks (object pointer +
// member pointer) fills slots from the end. Free slots hold traps. A page of run-time code records which slots are
// entries (where a thunk or closure starts): those alone become call targets when it is sealed.
#pragma once

#include "detail/arch/encoder.hpp"
#include "detail/callback.hpp"
#include "detail/config.hpp"
#include "detail/os_error.hpp"
#include "detail/prebuilt_regions.hpp"
#include "detail/region.hpp"
#include "detail/region_kind.hpp"
#include "exception.hpp"

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
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
		    front_(other.front_), back_(other.back_), entries_(other.entries_), executable_(other.executable_)
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
				front_ = other.front_;
				back_ = other.back_;
				entries_ = other.entries_;
				executable_ = other.executable_;
			}
			return *this;
		}

		/// Revokes the page: every thunk made on it stops being callable at once. Never throws.
		~page() { free(); }

		/// Makes a thunk that calls `(that->*fn)(args...)` when called as `Callback(first, args...)`; `first` is
		/// ignored. `fn` is any pointer to a member function of Class or of a base of Class (virtual members are
		/// dispatched at each call, like a direct call would). Takes one slot plus the slots that hold `that` and
		/// `fn` (see free_slots()). Precondition: `that` and `fn` are not null and the page is not moved-from.
		/// Throws page_executable if the page was sealed, page_full if it lacks the slots.
		template<class Callback, class MemberFn, class Class>
		[[nodiscard]] Callback make_thunk(Class* that, MemberFn fn)
		{
			return make_bound_member<detail::binding::replaces_first, Callback>(that, fn);
		}

		/// Makes a thunk that calls `(that->*MemberFn)(args...)` when called as `Callback(first, args...)`; `first` is
		/// ignored. The member is known at compile time, so the thunk jumps to a compiled trampoline that is a tail
		/// jump to the member (or its inlined body). Takes one slot. Same preconditions and errors as above.
		template<class Callback, auto MemberFn, class Class>
		[[nodiscard]] Callback make_thunk(Class* that)
		{
			return make_member<detail::binding::replaces_first, Callback, MemberFn>(that);
		}

		/// Makes a thunk that calls `callable(args...)` when called as `Callback(first, args...)`; `first` is
		/// ignored. The callable (a lambda with captures, a function object...) is referenced, not copied: it must
		/// outlive every call of the thunk. Takes one slot. Throws page_executable or page_full.
		template<class Callback, class Callable>
		[[nodiscard]] Callback make_thunk(Callable& callable)
		{
			return make_callable<detail::binding::replaces_first, Callback>(callable);
		}

		/// A temporary callable would be gone before the thunk is called: this overload only explains the error.
		template<class Callback, class Callable>
		requires(!std::is_lvalue_reference_v<Callable>) Callback make_thunk([[maybe_unused]] Callable&& callable)
		{
			explain_temporary<Callable>();
			return no_thunk<Callback>();
		}

		/// Makes a closure that calls `(that->*MemberFn)(args...)` when called as `Callback(args...)`: every argument
		/// is kept, and the object pointer is passed in front of them. Callback may have no parameter at all; what it
		/// may have depends on the ABI (at most 5 integer or pointer parameters on x86-64 System V, 7 on AArch64, 3
		/// parameters on Windows x64, any number of float and double ones on the first two; none on i386, where
		/// closures are refused): a Callback that does not fit is a compile error that says why. Takes one or two
		/// slots of run-time code (more argument registers to move, a jump out of direct reach), one slot of prebuilt
		/// stubs. Same preconditions and errors as make_thunk.
		template<class Callback, auto MemberFn, class Class>
		[[nodiscard]] Callback make_closure(Class* that)
		{
			return make_member<detail::binding::prepends, Callback, MemberFn>(that);
		}

		/// Makes a closure that calls `(that->*fn)(args...)` when called as `Callback(args...)`.
		template<class Callback, class MemberFn, class Class>
		[[nodiscard]] Callback make_closure(Class* that, MemberFn fn)
		{
			return make_bound_member<detail::binding::prepends, Callback>(that, fn);
		}

		/// Makes a closure that calls `callable(args...)` when called as `Callback(args...)` (referenced, not copied).
		template<class Callback, class Callable>
		[[nodiscard]] Callback make_closure(Callable& callable)
		{
			return make_callable<detail::binding::prepends, Callback>(callable);
		}

		/// A temporary callable would be gone before the closure is called: this overload only explains the error.
		template<class Callback, class Callable>
		requires(!std::is_lvalue_reference_v<Callable>) Callback make_closure([[maybe_unused]] Callable&& callable)
		{
			explain_temporary<Callable>();
			return no_thunk<Callback>();
		}

		/// Seals the page: its thunks may be called from now on, and nothing they read can change. Run-time code:
		/// read-execute, instruction cache flushed, the entries of its thunks and closures (only their first slots)
		/// registered as call targets where the OS has such a list (Windows CFG). Prebuilt stubs: the data slots become
		/// read-only. Thunks may be called only after this returns. Does nothing if the page is already sealed. Throws
		/// os_error if the OS refuses; executable() then tells whether the page is still writable (it is, unless
		/// restoring it failed too).
		void mark_executable()
		{
			expect_valid();
			if (executable_)
				return;
			// A static step of the region's kind: it needs neither the heap nor its lock, and works whoever owns the
			// region by now (another thread's heap, the orphanage).
			const detail::seal_outcome outcome = region_->kind->seal(*region_, address_, entries_.words());
			executable_ = outcome.sealed;
			if (!outcome.ok())
				detail::throw_os_error(outcome.doing, outcome.failure);
		}

		/// True when no slot is free. A page that is not full has room for a compile-time member or callable thunk
		/// (one slot); a run-time member thunk needs more (see free_slots()).
		[[nodiscard]] bool full() const noexcept { return free_slots() == 0; }

		/// The slots not yet taken. A compile-time member thunk or a callable thunk takes one; a run-time member
		/// thunk takes one plus those that hold its object and member pointers: one more on pages of run-time code
		/// (a slot is 32 bytes), one more per pointer-sized word of them on pages of prebuilt stubs (three with the
		/// Itanium C++ ABI on 64-bit targets, kept in consecutive slots).
		[[nodiscard]] std::size_t free_slots() const noexcept
		{
			expect_valid();
			return slot_count_ - front_ - back_;
		}

		/// True once mark_executable() has sealed the page.
		[[nodiscard]] bool executable() const noexcept
		{
			expect_valid();
			return executable_;
		}

		/// Whether the page's thunks are prebuilt stubs (the OS forbids run-time code, or MEMBER_THUNK_NO_RUNTIME_CODE)
		/// rather than code written into the page.
		[[nodiscard]] bool prebuilt() const noexcept
		{
			expect_valid();
			return region_->kind->prebuilt;
		}

		/// The slots taken by the thunks and closures made on this page, from its start (a closure of run-time code
		/// may take two; a run-time member's data, taken from the end, is not counted: see free_slots()).
		[[nodiscard]] std::size_t size() const noexcept
		{
			expect_valid();
			return front_;
		}

		/// The number of slots in this page that may hold thunks: the most thunks of one slot it can hold.
		[[nodiscard]] std::size_t capacity() const noexcept
		{
			expect_valid();
			return slot_count_;
		}

		/// The size in bytes of one slot: 32 (the code of a thunk) on pages of run-time code, 16 (the data of a
		/// prebuilt stub) on pages of prebuilt stubs.
		[[nodiscard]] std::size_t slot_size() const noexcept
		{
			expect_valid();
			return region_->kind->slot_size;
		}

	private:
		friend struct detail::page_access;

		template<class Callback, detail::binding B = detail::binding::replaces_first>
		using trampolines = detail::trampolines_for<Callback, B>;
		template<detail::binding B, class Callback>
		using target_of = typename detail::bound_signature<B, Callback>::target;
		/// The encoder, named through a closure's binding so that the closure-only functions are looked up only
		/// where closures exist (the i386 encoder has none: closures are refused there at compile time).
		template<detail::binding B>
		using closure_encoder = std::conditional_t<B == detail::binding::prepends, encoder, void>;

		template<class Callable>
		static void explain_temporary() noexcept
		{
			static_assert(std::is_pointer_v<std::remove_cvref_t<Callable>> || std::is_lvalue_reference_v<Callable>,
			              "member_thunk: the callable must outlive the thunk, which refers to it: pass a named object "
			              "(an lvalue), not a temporary");
			static_assert(!std::is_pointer_v<std::remove_cvref_t<Callable>>,
			              "member_thunk: pass the callable object itself (by reference), not a pointer to it; for a "
			              "member function use make_thunk<Callback>(object, &Class::member) or "
			              "make_thunk<Callback, &Class::member>(object)");
		}

		template<detail::binding B, class Callback, auto MemberFn, class Class>
		Callback make_member(Class* that)
		{
			if constexpr (detail::check_member<Callback, Class, decltype(MemberFn), B>())
			{
				// Not `MemberFn != nullptr`: GCC cannot evaluate that comparison at compile time under
				// -fsanitize=null (which implies -fno-delete-null-pointer-checks).
				static_assert(!detail::is_null_member<MemberFn>,
				              "member_thunk: MemberFn must not be a null member pointer");
				MEMBER_THUNK_EXPECTS(that != nullptr, "make_thunk() was given a null object pointer");
				const target_of<B, Callback> target = &trampolines<Callback, B>::template member<Class, MemberFn>::call;
				check_writable(code_slots<B, Callback>(target));
				return emit<B, Callback>(that, target);
			}
			else
				return no_thunk<Callback>();
		}

		template<detail::binding B, class Callback, class MemberFn, class Class>
		Callback make_bound_member(Class* that, MemberFn fn)
		{
			if constexpr (detail::check_member<Callback, Class, MemberFn, B>())
			{
				MEMBER_THUNK_EXPECTS(that != nullptr, "make_thunk() was given a null object pointer");
				MEMBER_THUNK_EXPECTS(fn != nullptr, "make_thunk() was given a null member function pointer");
				using block = detail::bound_member_block<Class, MemberFn>;
				static_assert(std::is_trivially_copyable_v<block> && alignof(block) <= encoder::slot_alignment);
				const block value{that, fn};
				if (!prebuilt())
				{
					// Run-time code: the block itself, in whole slots at the end of the page (sealed with it).
					const target_of<B, Callback> target = &trampolines<Callback, B>::template bound_member<block>::call;
					const std::size_t data_slots = (sizeof(block) + slot_size() - 1) / slot_size();
					check_writable(code_slots<B, Callback>(target) + data_slots);
					back_ += data_slots;
					std::byte* const data = slot_address(slot_count_ - back_);
					const block* const stored = std::construct_at(reinterpret_cast<block*>(data), value);
					return emit<B, Callback>(stored, target);
				}
				// Prebuilt stubs: the block's words in the first words of consecutive data slots, whose second words
				// (the stubs' targets) keep pointing at the trap.
				constexpr std::size_t word = sizeof(std::uintptr_t);
				constexpr std::size_t pieces = (sizeof(block) + word - 1) / word;
				std::byte* const first = take_contiguous_from_back(pieces);
				std::array<unsigned char, pieces * word> bytes{};
				std::memcpy(bytes.data(), &value, sizeof(block));
				for (std::size_t i = 0; i < pieces; ++i)
				{
					std::uintptr_t piece = 0;
					std::memcpy(&piece, bytes.data() + i * word, word);
					detail::write_slot(first + i * slot_size(), piece, detail::stubs::trap_target());
				}
				return emit<B, Callback>(
				    first, &trampolines<Callback, B>::template scattered_member<block, detail::stubs::slot_size>::call);
			}
			else
				return no_thunk<Callback>();
		}

		template<detail::binding B, class Callback, class Callable>
		Callback make_callable(Callable& callable)
		{
			if constexpr (detail::check_callable<Callback, Callable, B>())
			{
				const target_of<B, Callback> target = &trampolines<Callback, B>::template callable<Callable>::call;
				check_writable(code_slots<B, Callback>(target));
				return emit<B, Callback>(std::addressof(callable), target);
			}
			else
				return no_thunk<Callback>();
		}

		/// How many argument places a closure for `Callback` moves (0 for a thunk).
		template<detail::binding B, class Callback>
		[[nodiscard]] static constexpr std::size_t shift() noexcept
		{
			if constexpr (B == detail::binding::prepends)
				return detail::closure_shift(typename detail::bound_signature<B, Callback>::parameters{});
			else
				return 0;
		}

		/// The slots the code of the next thunk or closure takes: one on pages of prebuilt stubs and for a thunk of
		/// run-time code; for a closure of run-time code, as many as its code needs (one or two).
		template<detail::binding B, class Callback>
		[[nodiscard]] std::size_t code_slots(target_of<B, Callback> target) const noexcept
		{
			if constexpr (B == detail::binding::replaces_first)
				return 1;
			else
			{
				if (prebuilt())
					return 1;
				const auto at = reinterpret_cast<std::uintptr_t>(slot_address(front_));
				const bool direct = closure_encoder<B>::closure_reaches_directly(
				    at, shift<B, Callback>(), closure_destination<B, Callback>(target, at));
				return (closure_encoder<B>::closure_size(shift<B, Callback>(), direct) + slot_size() - 1) / slot_size();
			}
		}

		page(detail::region& r, std::byte* address) noexcept :
		    region_(&r), address_(address), slot_count_(r.kind->usable_slots(r.page_size))
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

		/// The address of the slot that holds the `position`-th thunk of the page.
		[[nodiscard]] std::byte* slot_address(std::size_t position) const noexcept
		{
			return address_ + region_->kind->slot_of(position) * region_->kind->slot_size;
		}

		/// Takes `count` slots from the end of the free ones that are adjacent in memory (never split by a chunk
		/// header), plus one for the thunk itself; returns the first of them. Throws like check_writable().
		std::byte* take_contiguous_from_back(std::size_t count)
		{
			check_writable(1 + count);
			std::size_t end = slot_count_ - back_; // one past the last free position
			while (true)
			{
				const std::size_t begin = end - count;
				if (begin >= front_ + 1 && slot_address(end - 1) - slot_address(begin) ==
				                               static_cast<std::ptrdiff_t>((count - 1) * slot_size()))
				{
					back_ = slot_count_ - begin;
					return slot_address(begin);
				}
				// The run crosses a chunk header: leave the positions after it and try before it.
				const std::size_t per_chunk = region_->kind->chunk_slots - region_->kind->header_slots;
				const std::size_t chunk_start = (end - 1) / per_chunk * per_chunk;
				if (chunk_start < front_ + 1 + count)
					throw page_full();
				end = chunk_start;
			}
		}

		// `target` has exactly the callback's signature with the first parameter made void* (a thunk) or a void*
		// parameter put in front (a closure): that is what makes the jump ABI-correct, so it is a parameter type, not
		// a deduced one. The caller has checked that the page has the slots.
		template<detail::binding B, class Callback>
		Callback emit(const volatile void* bound, target_of<B, Callback> target) noexcept
		{
			std::byte* const slot = slot_address(front_);
			const auto bound_address = reinterpret_cast<std::uintptr_t>(bound);
			const auto trampoline = reinterpret_cast<std::uintptr_t>(target);
			if (prebuilt())
			{
				// The stub jumps indirectly: always to the trampoline itself, which has its landing pad.
				detail::write_slot(slot, bound_address, trampoline);
				++front_;
				return std::bit_cast<Callback>(
				    slot + (B == detail::binding::replaces_first ? region_->thunk_stubs : region_->closure_stubs));
			}
			const auto at = reinterpret_cast<std::uintptr_t>(slot);
			if constexpr (B == detail::binding::replaces_first)
			{
				encoder::encode(std::span<std::byte, encoder::slot_size>(slot, encoder::slot_size), bound_address,
				                destination(trampoline, at), at);
				entries_.add(front_);
				++front_;
			}
			else
			{
				const std::size_t slots = code_slots<B, Callback>(target);
				closure_encoder<B>::encode_closure(std::span<std::byte>(slot, slots * encoder::slot_size),
				                                   shift<B, Callback>(), bound_address,
				                                   closure_destination<B, Callback>(target, at), at);
				entries_.add(front_); // the first slot only: the others hold the rest of its code
				front_ += slots;
			}
			return std::bit_cast<Callback>(slot);
		}

		/// Where a closure of run-time code at `at` jumps to reach `target`: as destination() for a thunk, with the
		/// closure's own jump position.
		template<detail::binding B, class Callback>
		[[nodiscard]] static std::uint64_t closure_destination(target_of<B, Callback> target, std::uint64_t at) noexcept
		{
			const auto trampoline = reinterpret_cast<std::uintptr_t>(target);
#if MEMBER_THUNK_FOLLOW_JUMPS
			const std::uint64_t followed = follow(trampoline);
			if (closure_encoder<B>::closure_reaches_directly(at, shift<B, Callback>(), followed))
				return followed;
#else
			static_cast<void>(at);
#endif
			return trampoline;
		}

		/// Where the trampoline's leading direct jumps lead (it reads the trampoline's own instructions).
		[[nodiscard]] static std::uint64_t follow(std::uint64_t trampoline) noexcept
		{
			return detail::arch::follow_jumps<encoder>(trampoline, [](std::uint64_t address) {
				// The address of an instruction of the trampoline, decoded from its own jumps: it fits a pointer.
				const auto at = static_cast<std::uintptr_t>(address);
				return *reinterpret_cast<const volatile std::byte*>(at); // NOLINT(performance-no-int-to-ptr)
			});
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
			const std::uint64_t followed = follow(trampoline);
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
				r.owner.load(std::memory_order_acquire)
				    ->free_page(r, address_, executable_ ? entries_.words() : std::span<const std::uint64_t>{});
			}
		}

		detail::region* region_;
		std::byte* address_;
		std::size_t slot_count_;
		std::size_t front_ = 0;      // thunks made, from the start
		std::size_t back_ = 0;       // slots taken by run-time member data, from the end
		detail::entry_mask entries_; // run-time code: the slots where a thunk or closure starts (call targets)
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

			/// The page's first byte: its code (run-time code) or its data slots (prebuilt stubs).
			[[nodiscard]] static std::byte* address_of(const page& p) noexcept { return p.address_; }
		};
	} // namespace detail
} // namespace member_thunk
