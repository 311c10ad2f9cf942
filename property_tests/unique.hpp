// Property tests: unique thunks of every signature of the family, in one type (a variant of the six unique_thunk
// types) so that one list holds them all, and made by any heap: a heap<Lock> (its members) or the default heap (the
// free functions, through default_heap_functions).
#pragma once

#include "family.hpp"

#include <member_thunk/page.hpp>
#include <member_thunk/unique_thunk.hpp>

#ifndef MEMBER_THUNK_DISABLE_DEFAULT_HEAP
#include <member_thunk/default_heap.hpp>
#endif

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <variant>

namespace prop
{
	/// A unique thunk of any signature of the family; the alternative's index is the signature's (with_signature).
	using any_unique = std::variant<member_thunk::unique_thunk<sig_long>, member_thunk::unique_thunk<sig_double>,
	                                member_thunk::unique_thunk<sig_spill>, member_thunk::unique_thunk<sig_mixed>,
	                                member_thunk::unique_thunk<sig_float_spill>, member_thunk::unique_thunk<sig_void>>;

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
	};
#endif

	/// Makes a unique thunk of the given signature and form with `heap`, bound to a new object `id` kept in `objects`.
	/// Throws what make_unique_thunk throws.
	template<class Heap>
	[[nodiscard]] any_unique make_unique(Heap& heap, std::size_t signature, form f, long id, object_store& objects)
	{
		return with_signature(signature, [&]<class Sig>(std::type_identity<Sig>) -> any_unique {
			using traits = signature_traits<Sig>;
			using base = typename traits::base;
			using derived = typename traits::derived;
			using thunk = member_thunk::unique_thunk<Sig>;
			switch (f)
			{
			case form::compile_time_member:
				return any_unique(std::in_place_type<thunk>,
				                  heap.template make_unique_thunk<Sig, &base::call>(&objects.add<derived>(id)));
			case form::compile_time_virtual_member:
				return any_unique(std::in_place_type<thunk>,
				                  heap.template make_unique_thunk<Sig, &base::vcall>(&objects.add<derived>(id)));
			case form::run_time_member:
				return any_unique(std::in_place_type<thunk>,
				                  heap.template make_unique_thunk<Sig>(&objects.add<derived>(id), &base::call));
			case form::run_time_virtual_member: {
				base* const object = &objects.add<derived>(id);
				return any_unique(std::in_place_type<thunk>,
				                  heap.template make_unique_thunk<Sig>(object, &base::vcall));
			}
			default:
				return any_unique(std::in_place_type<thunk>, heap.template make_unique_thunk<Sig>(
				                                                 objects.add<typename traits::function_object>(id)));
			}
		});
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
