// Property tests: unique thunks and unique closures of every signature of the family, in one type (a variant of the
// unique_thunk types) so that one list holds them all, and made by any heap: a heap<Lock> (its members) or the default
// heap (the free functions, through default_heap_functions).
#pragma once

#include "family.hpp"

#include <member_thunk/page.hpp>
#include <member_thunk/unique_thunk.hpp>

#ifndef MEMBER_THUNK_DISABLE_DEFAULT_HEAP
#include <member_thunk/default_heap.hpp>
#endif

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace prop
{
	template<class List>
	struct unique_variant;

	template<class... Sig>
	struct unique_variant<std::tuple<Sig...>>
	{
		using type = std::variant<member_thunk::unique_thunk<Sig>...>;
	};

	/// A unique thunk or closure of any signature of the family; the alternative's index is the signature's
	/// (with_signature), so a closure's is a closure signature's (is_closure).
	using any_unique = typename unique_variant<family>::type;

#ifndef MEMBER_THUNK_DISABLE_DEFAULT_HEAP
	/// The default heap's free functions, as the members a heap<Lock> has.
	struct default_heap_functions
	{
		[[nodiscard]] member_thunk::page allocate_page() { return member_thunk::allocate_page(); }
		void compact() { member_thunk::compact(); }

		template<class Callback, auto MemberFn, class Class>
		[[nodiscard]] member_thunk::unique_thunk<Callback> make_unique_thunk(Class* that)
		{
			return member_thunk::make_unique_thunk<Callback, MemberFn>(that);
		}

		template<class Callback, class MemberFn, class Class>
		[[nodiscard]] member_thunk::unique_thunk<Callback> make_unique_thunk(Class* that, MemberFn fn)
		{
			return member_thunk::make_unique_thunk<Callback>(that, fn);
		}

		template<class Callback, class Callable>
		[[nodiscard]] member_thunk::unique_thunk<Callback> make_unique_thunk(Callable& callable)
		{
			return member_thunk::make_unique_thunk<Callback>(callable);
		}

		template<class Callback, auto MemberFn, class Class>
		[[nodiscard]] member_thunk::unique_thunk<Callback> make_unique_closure(Class* that)
		{
			return member_thunk::make_unique_closure<Callback, MemberFn>(that);
		}

		template<class Callback, class MemberFn, class Class>
		[[nodiscard]] member_thunk::unique_thunk<Callback> make_unique_closure(Class* that, MemberFn fn)
		{
			return member_thunk::make_unique_closure<Callback>(that, fn);
		}

		template<class Callback, class Callable>
		[[nodiscard]] member_thunk::unique_thunk<Callback> make_unique_closure(Callable& callable)
		{
			return member_thunk::make_unique_closure<Callback>(callable);
		}
	};
#endif

	/// A heap's ways of binding for Sig (see make_in_form): make_unique_thunk, or make_unique_closure for a closure
	/// signature.
	template<class Sig, class Heap>
	struct unique_maker
	{
		static constexpr bool closure = signature_traits<Sig>::closure;
		Heap& heap;

		template<auto Member, class Class>
		[[nodiscard]] member_thunk::unique_thunk<Sig> compile_time(Class* that) const
		{
			if constexpr (closure)
				return heap.template make_unique_closure<Sig, Member>(that);
			else
				return heap.template make_unique_thunk<Sig, Member>(that);
		}

		template<class Class, class Member>
		[[nodiscard]] member_thunk::unique_thunk<Sig> run_time(Class* that, Member fn) const
		{
			if constexpr (closure)
				return heap.template make_unique_closure<Sig>(that, fn);
			else
				return heap.template make_unique_thunk<Sig>(that, fn);
		}

		template<class Callable>
		[[nodiscard]] member_thunk::unique_thunk<Sig> callable(Callable& c) const
		{
			if constexpr (closure)
				return heap.template make_unique_closure<Sig>(c);
			else
				return heap.template make_unique_thunk<Sig>(c);
		}
	};

	/// Makes a unique thunk, or a unique closure for a closure signature, of the given signature and form with
	/// `heap`, bound to a new object `id` kept in `objects`. Throws what make_unique_thunk and make_unique_closure
	/// throw.
	template<class Heap>
	[[nodiscard]] any_unique make_unique(Heap& heap, std::size_t signature, form f, long id, object_store& objects)
	{
		return with_signature(signature, [&]<class Sig>(std::type_identity<Sig>) -> any_unique {
			return any_unique(std::in_place_type<member_thunk::unique_thunk<Sig>>,
			                  make_in_form<Sig>(unique_maker<Sig, Heap>{heap}, f, id, objects));
		});
	}

	/// "make_unique_thunk" or "make_unique_closure".
	[[nodiscard]] inline const char* unique_maker_name(std::size_t signature) noexcept
	{
		return is_closure(signature) ? "make_unique_closure" : "make_unique_thunk";
	}

	/// Whether `u` holds (or held) a unique closure.
	[[nodiscard]] inline bool is_closure(const any_unique& u) noexcept
	{
		return is_closure(u.index());
	}

	/// The entry address (get()); 0 when empty.
	[[nodiscard]] inline std::uintptr_t address_of(const any_unique& u) noexcept
	{
		return std::visit([](const auto& t) { return address_of(t.get()); }, u);
	}

	[[nodiscard]] inline bool holds_thunk(const any_unique& u) noexcept
	{
		return std::visit([](const auto& t) { return static_cast<bool>(t); }, u);
	}

	/// The thunk's data slot {bound, target}.
	[[nodiscard]] inline std::byte* slot_of(const any_unique& u) noexcept
	{
		return std::visit([](const auto& t) { return member_thunk::detail::unique_thunk_access::slot_of(t); }, u);
	}

	inline void reset(any_unique& u) noexcept
	{
		std::visit([](auto& t) { t.reset(); }, u);
	}

	/// `to = std::move(from)`: unique_thunk's move assignment when both have the same signature (the variant's
	/// assignment then assigns the alternative), else the variant destroys `to`'s thunk and moves `from`'s in.
	inline void move_assign(any_unique& to, any_unique& from) noexcept
	{
		to = std::move(from);
	}
} // namespace prop
